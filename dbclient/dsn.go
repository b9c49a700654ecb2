// Package dbclient names what vigil needs to reach a database server: its
// DSN, parsed so that its password never shows, and the client programs it
// is dumped and loaded with. It talks to no server, so the configuration
// can check a DSN and find pg_dump without the database adapter.
package dbclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// The server engines, named as their resource types.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
)

// A DSN names a database server, a user and a database, and may carry the
// user's password. vigil never shows a password: every DSN and every
// message a person reads goes through Redact or a Server's String first.
//
//	postgres: postgres://user[:password]@host[:port]/database[?sslmode=…]
//	mysql:    user[:password]@tcp(host:port)/database[?tls=true]   (Go's MySQL driver format)

// Server is a parsed DSN.
type Server struct {
	Engine   string // Postgres or MySQL
	Database string
	password string
	pg       *url.URL
	my       *mysql.Config
}

// ParseDSN parses a DSN of engine. Its errors never quote the DSN, which
// may hold a password.
func ParseDSN(engine, dsn string) (Server, error) {
	switch engine {
	case Postgres:
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" && u.Query().Get("host") == "" {
			return Server{}, errors.New("is not a PostgreSQL URL: write it like postgres://user@127.0.0.1:5432/dbname")
		}
		db := strings.TrimPrefix(u.Path, "/")
		if db == "" || strings.Contains(db, "/") {
			return Server{}, errors.New("names no database: end the URL with /dbname, like postgres://user@127.0.0.1:5432/orders")
		}
		q := u.Query()
		for _, key := range []string{"dbname", "database"} {
			// libpq and pgx let these override the path: a restore
			// would load into that database instead of its new one.
			if q.Has(key) {
				return Server{}, fmt.Errorf("sets %s in its query: name the database in the path only, like postgres://user@127.0.0.1:5432/orders", key)
			}
		}
		if q.Has("sslpassword") {
			return Server{}, errors.New("sets sslpassword: vigil cannot keep that secret out of its records; use a client key without a passphrase, readable only by vigil's user")
		}
		pw, _ := u.User.Password()
		if q.Has("password") {
			// A password in the query is a password all the same: it
			// moves to the user part, which vigil keeps secret.
			pw = q.Get("password")
			q.Del("password")
			u.RawQuery = q.Encode()
			name := ""
			if u.User != nil {
				name = u.User.Username()
			}
			u.User = url.UserPassword(name, pw)
		}
		return Server{Engine: engine, Database: db, password: pw, pg: u}, nil
	case MySQL:
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			return Server{}, errors.New("is not a MySQL DSN: write it like user@tcp(127.0.0.1:3306)/dbname")
		}
		if c.DBName == "" {
			return Server{}, errors.New("names no database: end it with /dbname, like root@tcp(127.0.0.1:3306)/shop")
		}
		if c.Net != "tcp" && c.Net != "unix" {
			return Server{}, fmt.Errorf("uses protocol %q: use tcp(host:port) or unix(/path/to/socket)", c.Net)
		}
		return Server{Engine: engine, Database: c.DBName, password: c.Passwd, my: c}, nil
	}
	return Server{}, fmt.Errorf("resource type %q is not a database server", engine)
}

// HasPassword reports whether the DSN carries a password.
func (s Server) HasPassword() bool { return s.password != "" }

// WithDatabase returns the same server and credentials, naming database db.
func (s Server) WithDatabase(db string) Server {
	out := s
	out.Database = db
	if s.pg != nil {
		u := *s.pg
		u.Path = "/" + db
		u.RawPath = ""
		out.pg = &u
	}
	if s.my != nil {
		c := s.my.Clone()
		c.DBName = db
		out.my = c
	}
	return out
}

// DSN returns the DSN to connect with, password included: for drivers only,
// never for a person.
func (s Server) DSN() string {
	if s.pg != nil {
		return s.pg.String()
	}
	return s.my.FormatDSN()
}

// String returns the DSN without its password, for people.
func (s Server) String() string {
	if s.pg != nil {
		u := *s.pg
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		return u.String()
	}
	if s.my != nil {
		c := s.my.Clone()
		c.Passwd = ""
		return c.FormatDSN()
	}
	return ""
}

// ServerString returns the DSN without its password and without its
// database: which server and user, for restore metadata.
func (s Server) ServerString() string {
	return s.WithDatabase("").String()
}

// SameServer reports whether o names the same server and user as s.
func (s Server) SameServer(o Server) bool { return s.ServerString() == o.ServerString() }

// WithPasswordOf returns s with o's password.
func (s Server) WithPasswordOf(o Server) Server {
	out := s.WithDatabase(s.Database)
	out.password = o.password
	if out.pg != nil && out.pg.User != nil && o.password != "" {
		out.pg.User = url.UserPassword(out.pg.User.Username(), o.password)
	}
	if out.my != nil {
		out.my.Passwd = o.password
	}
	return out
}

// Redact replaces the password of s wherever it appears in msg: a tool's
// error output, a driver's error.
func (s Server) Redact(msg string) string {
	if s.password == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, s.password, "xxxxx")
	if esc := url.UserPassword("u", s.password).String(); esc != "" {
		if _, p, ok := strings.Cut(esc, ":"); ok && p != s.password {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// PasswordEnv returns PGPASSWORD or MYSQL_PWD set to the password, for a
// client tool or a command validator that connects to the server: the
// password stays off the command line, where ps would show it. Nothing
// when there is no password.
func (s Server) PasswordEnv() []string {
	if s.password == "" {
		return nil
	}
	if s.pg != nil {
		return []string{"PGPASSWORD=" + s.password}
	}
	return []string{"MYSQL_PWD=" + s.password}
}

// PGConnArg is the --dbname argument of pg_dump and pg_restore: the URL
// without its password (which goes through PGPASSWORD).
func (s Server) PGConnArg() string {
	u := *s.pg
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// MySQLArgs are the connection arguments of mariadb-dump and the mariadb
// client; the password goes through MYSQL_PWD.
func (s Server) MySQLArgs() []string {
	c := s.my
	var args []string
	if c.User != "" {
		args = append(args, "--user="+c.User)
	}
	switch c.Net {
	case "unix":
		args = append(args, "--protocol=socket", "--socket="+c.Addr)
	default:
		host, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			host, port = c.Addr, "3306"
		}
		args = append(args, "--protocol=tcp", "--host="+host, "--port="+port)
	}
	switch c.TLSConfig {
	case "", "false":
	case "skip-verify", "preferred":
		args = append(args, "--ssl")
	default:
		args = append(args, "--ssl", "--ssl-verify-server-cert")
	}
	return args
}
