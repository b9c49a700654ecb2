package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil/dbclient"
)

// SQLCheck runs a query against the restored database (never against the
// source) and expects one of: Expect, the single value it returns, as text
// ("100000", "true"); ExpectRows, the number of rows it returns; or
// ExpectTrue, a single true value (true, t, 1).
type SQLCheck struct {
	Query      string   `yaml:"query"`
	Expect     *string  `yaml:"expect"`
	ExpectRows *int64   `yaml:"expect_rows"`
	ExpectTrue bool     `yaml:"expect_true"`
	Timeout    Duration `yaml:"timeout"` // per attempt
}

// DefaultSQLTimeout is a query's per-attempt timeout.
const DefaultSQLTimeout = time.Minute

// dsnSources counts the places a resource's DSN is given.
func (r Resource) dsnSources() int {
	n := 0
	for _, s := range []string{r.DSN, r.DSNEnv, r.DSNFile} {
		if s != "" {
			n++
		}
	}
	return n
}

// toolPaths maps a database resource's tool fields to their values.
func (r Resource) toolPaths() map[string]string {
	return map[string]string{
		"pg_dump_path":    r.PGDumpPath,
		"pg_restore_path": r.PGRestorePath,
		"mysqldump_path":  r.MySQLDumpPath,
		"mysql_path":      r.MySQLPath,
	}
}

// validateSource checks where a resource's data comes from: a folder, a
// database file, or a database server.
func validateSource(add func(field, format string, args ...any), f string, r Resource) {
	rules, known := rulesOf(r.Type)
	if !known {
		return // the type itself is refused
	}
	server := rules.source == fromServer
	switch rules.source {
	case fromServer:
		if r.Path != "" {
			add(f+".path", "a %s resource is reached through its dsn, not a path", r.Type)
		}
		switch r.dsnSources() {
		case 0:
			add(f, "a %s resource needs dsn, dsn_env or dsn_file", r.Type)
		case 1:
		default:
			add(f, "give only one of dsn, dsn_env and dsn_file")
		}
		if r.DSN != "" {
			srv, err := dbclient.ParseDSN(r.Type, r.DSN)
			switch {
			case err != nil:
				add(f+".dsn", "%v", err)
			case srv.HasPassword():
				add(f+".dsn", "holds a password: this file may be shared, so move the DSN to dsn_env or dsn_file")
			}
		}
	case fromFile:
		if r.Path == "" {
			add(f+".path", "is missing: give the SQLite database file")
		}
	default:
		if r.Path == "" && r.Source == nil {
			add(f+".path", "is missing: give the folder to back up (or, for a folder another tool backs up, its source)")
		}
	}
	if !server && r.dsnSources() > 0 {
		add(f, "dsn, dsn_env and dsn_file belong to types %s, not %s", serverTypes(), r.Type)
	}
	own := map[string]bool{}
	for _, t := range dbclient.ToolsFor(r.Type) {
		own[t.Field] = true
	}
	for field, v := range r.toolPaths() {
		if v != "" && !own[field] {
			add(f+"."+field, "does not belong to a %s resource", r.Type)
		}
	}
}

// loadDSNs reads each postgres and mysql resource's DSN, password included.
// Errors never quote a DSN.
func (c *Config) loadDSNs() []error {
	var errs []error
	for i := range c.Resources {
		r := &c.Resources[i]
		if rules, _ := rulesOf(r.Type); rules.source != fromServer {
			continue
		}
		f := fmt.Sprintf("resources[%d]", i)
		dsn, field := r.DSN, f+".dsn"
		if dsn == "" {
			var err error
			dsn, err = readSecret(f, "dsn", r.DSNEnv, r.DSNFile)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			field = f + ".dsn_file"
			if r.DSNEnv != "" {
				field = f + ".dsn_env"
			}
		}
		srv, err := dbclient.ParseDSN(r.Type, dsn)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: the DSN of resource %q %v", field, r.Name, err))
			continue
		}
		r.Server = srv
	}
	return errs
}

// LookupTools finds the client programs each database resource needs, on
// PATH or where the config says. The server calls it at start, so that a
// missing pg_dump is an error now, naming the package to install, rather
// than a failed backup at 2 a.m.
func (c *Config) LookupTools() error {
	var errs []error
	for i := range c.Resources {
		r := &c.Resources[i]
		if !IsDatabase(r.Type) {
			continue
		}
		tools, err := dbclient.FindTools(r.Type, r.toolPaths())
		if err != nil {
			errs = append(errs, fmt.Errorf("resources[%d] (%s %q): %w", i, r.Type, r.Name, err))
			continue
		}
		r.Tools = tools
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config %s: %w", c.Path, err)
	}
	return nil
}
