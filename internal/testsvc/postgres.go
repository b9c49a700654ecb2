package testsvc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const postgresInstall = "apt-get install postgresql (initdb, pg_ctl and postgres, found in /usr/lib/postgresql/<version>/bin or on PATH)"

// Postgres is a private PostgreSQL cluster made for one test, listening
// on 127.0.0.1 with trust authentication for the user postgres. Unlike
// the machine's shared server, a test may stop and start it.
type Postgres struct {
	// URL connects to its database postgres as the user postgres.
	URL string

	t    testing.TB
	bin  string // the folder of initdb, pg_ctl and postgres
	data string // the cluster's data folder
	log  string // the server's log file
	as   []string
	port int
}

// StartPostgres makes a PostgreSQL cluster in a temporary folder, starts
// it on a free loopback port and removes it at the test's end. PostgreSQL
// refuses to run as root, so when the test runs as root the cluster
// belongs to, and runs as, the OS user postgres (through runuser). It
// fails the test, saying what to install, when PostgreSQL's server
// binaries are missing.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatalf("PostgreSQL's server binaries, which this test runs a private cluster with, are not installed: %v\ninstall them with: %s", err, postgresInstall)
	}
	// Not t.TempDir: its parent folders are private to root, and the
	// server may run as postgres.
	dir, err := os.MkdirTemp("", "vigil-test-postgres-")
	if err != nil {
		t.Fatalf("create the folder of a test PostgreSQL cluster: %v", err)
	}
	p := &Postgres{t: t, bin: bin, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "server.log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("PostgreSQL refuses to run as root, and there is no OS user postgres to run the test cluster as: %v\ncreate it (the postgresql package does) or run the tests as another user", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			t.Fatalf("hand the test cluster's folder to the user postgres: %v", err)
		}
		p.as = []string{"runuser", "-u", "postgres", "--"}
	}
	t.Cleanup(func() {
		p.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if out, err := p.command(filepath.Join(bin, "initdb"), "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb of a test PostgreSQL cluster in %s: %v\n%s", p.data, err, out)
	}
	// A free port may be taken between closing its probe and the server
	// binding it; try again with a new one.
	for try := 0; ; try++ {
		addr := freePort(t)
		_, port, _ := net.SplitHostPort(addr)
		p.port, _ = strconv.Atoi(port)
		p.URL = fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", addr)
		err := p.start()
		if err == nil {
			return p
		}
		if try == 2 {
			t.Fatalf("start the test PostgreSQL cluster: %v", err)
		}
	}
}

// Stop stops the server: "fast" ends every session and shuts down
// cleanly, "immediate" kills the server as a crash would.
func (p *Postgres) Stop(mode string) {
	p.t.Helper()
	if out, err := p.pgctl("stop", "-m", mode); err != nil {
		p.t.Fatalf("stop the test PostgreSQL cluster (-m %s): %v\n%s", mode, err, out)
	}
}

// Start starts the stopped server again on the same port.
func (p *Postgres) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("start the test PostgreSQL cluster again: %v", err)
	}
}

func (p *Postgres) start() error {
	// Its socket goes to its own folder, not beside the shared server's.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=200",
		p.port, filepath.Dir(p.data))
	if out, err := p.pgctl("start", "-w", "-t", "60", "-l", p.log, "-o", opts); err != nil {
		b, _ := os.ReadFile(p.log)
		return fmt.Errorf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, b)
	}
	// pg_ctl -w waits for the server to accept connections; one query
	// proves it takes ours.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, p.URL)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("connect to %s: %w", p.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *Postgres) pgctl(args ...string) ([]byte, error) {
	return p.command(filepath.Join(p.bin, "pg_ctl"), append([]string{"-D", p.data}, args...)...).CombinedOutput()
}

// command runs name as the cluster's owner.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, p.as...), name), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// postgresBin finds the folder of PostgreSQL's server binaries: beside an
// initdb on PATH, or the newest /usr/lib/postgresql/<version>/bin, as
// Debian installs them.
func postgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no initdb on PATH nor in /usr/lib/postgresql/*/bin")
}

// version is the major version in a path /usr/lib/postgresql/<version>/bin.
func version(binDir string) int {
	n, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(binDir)), ".")[0])
	return n
}
