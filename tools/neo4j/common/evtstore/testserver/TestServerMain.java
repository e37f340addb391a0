package evtstore.testserver;

import java.util.concurrent.CountDownLatch;

/**
 * What the three Neo4j test servers share: reads the Bolt port from the
 * command line, starts the server, prints one ready line on stdout (the start
 * script waits for it), and closes the server on SIGTERM or SIGINT.
 */
public final class TestServerMain {
    /** Starts an embedded Neo4j whose Bolt connector listens on 127.0.0.1:port. */
    public interface Starter {
        AutoCloseable start(int port) throws Exception;
    }

    private TestServerMain() {}

    public static void run(String version, String[] args, Starter starter) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: <main class> BOLT_PORT");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        AutoCloseable server = starter.start(port);
        CountDownLatch closed = new CountDownLatch(1);
        // The JVM runs shutdown hooks on SIGTERM and SIGINT; closing the
        // harness there stops Neo4j cleanly before the process exits.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                server.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "close-neo4j"));
        System.out.println("ready neo4j " + version + " bolt://127.0.0.1:" + port);
        System.out.flush();
        closed.await();
    }
}
