package evtstore.testserver;

import org.neo4j.harness.ServerControls;
import org.neo4j.harness.TestServerBuilders;

/** Neo4j 3.5 through its harness (TestServerBuilders, string settings); no authentication. */
public final class Neo4j35 {
    private Neo4j35() {}

    public static void main(String[] args) throws Exception {
        TestServerMain.run("3.5", args, port -> {
            ServerControls server = TestServerBuilders.newInProcessBuilder()
                    .withConfig("dbms.security.auth_enabled", "false")
                    .withConfig("dbms.connector.bolt.enabled", "true")
                    .withConfig("dbms.connector.bolt.listen_address", "127.0.0.1:" + port)
                    .withConfig("dbms.connector.http.listen_address", "127.0.0.1:0")
                    .withConfig("dbms.connector.https.enabled", "false")
                    .newServer();
            return server::close;
        });
    }
}
