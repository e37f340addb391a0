package evtstore.testserver;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Neo4j 4.4 and 5.x through their harness (Neo4jBuilders, typed settings: the
 * same calls compile against both); no authentication, no HTTP server.
 */
public final class Neo4jBuildersServer {
    private Neo4jBuildersServer() {}

    public static void main(String[] args) throws Exception {
        String version = Neo4j.class.getPackage().getImplementationVersion();
        TestServerMain.run(version == null ? "4.4+" : version, args, port -> {
            Neo4j server = Neo4jBuilders.newInProcessBuilder()
                    .withDisabledServer()
                    .withConfig(GraphDatabaseSettings.auth_enabled, false)
                    .withConfig(BoltConnector.enabled, true)
                    .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                    // 4.4 would otherwise write two 250 MB transaction logs at start
                    .withConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                    .build();
            return server::close;
        });
    }
}
