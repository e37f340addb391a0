//! Tests of the Neo4j engine on the running test servers.
