// A MongoDB-wire-protocol test server for evtstore-rs: FerretDB v1 embedded,
// storing its data in SQLite files. No mongod can be installed on the
// project's machines, and FerretDB's own v1 binary, built with `go install`,
// panics at start (a generated version file is missing); embedding it
// through its public package avoids that.
//
// Usage: ferretdb-test-server -port 57017 -dir /tmp/evtstore-rs-ferretdb/data
// Prints one line "ready mongodb://127.0.0.1:PORT/" on stdout once the port
// accepts connections; SIGTERM or SIGINT shuts it down and it exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	port := flag.Int("port", 57017, "TCP port on 127.0.0.1")
	dir := flag.String("dir", "", "folder for the SQLite databases (created if missing)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error (logs go to stderr)")
	flag.Parse()
	if err := run(*port, *dir, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server:", err)
		os.Exit(1)
	}
}

func run(port int, dir, logLevel string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	// FerretDB's SQLite handler wants an absolute, existing folder given as a
	// URL that ends with a slash.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// New already binds the port, so a client may connect once it returns.
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: fmt.Sprintf("127.0.0.1:%d", port)},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx) }()
	fmt.Printf("ready %s\n", server.MongoDBURI())
	return <-done
}
