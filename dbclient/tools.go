package dbclient

import (
	"fmt"
	"os/exec"
)

// Tools are the client programs a database resource is backed up and
// restored with, as absolute paths. SQLite needs none: vigil links SQLite.
type Tools struct {
	// PostgreSQL: pg_dump writes the dump, pg_restore loads it.
	PGDump, PGRestore string
	// MySQL and MariaDB: mariadb-dump (or mysqldump) writes the dump, the
	// mariadb (or mysql) client loads it.
	MySQLDump, MySQL string
}

// Tool is one client program a resource type needs.
type Tool struct {
	// Names are tried in order on PATH.
	Names []string
	// Field is the resource's config key that names it explicitly.
	Field string
	// Package is the Debian package that provides it.
	Package string
	set     func(*Tools, string)
}

// ToolsFor lists the programs resources of type engine need.
func ToolsFor(engine string) []Tool {
	switch engine {
	case Postgres:
		return []Tool{
			{Names: []string{"pg_dump"}, Field: "pg_dump_path", Package: "postgresql-client", set: func(t *Tools, p string) { t.PGDump = p }},
			{Names: []string{"pg_restore"}, Field: "pg_restore_path", Package: "postgresql-client", set: func(t *Tools, p string) { t.PGRestore = p }},
		}
	case MySQL:
		return []Tool{
			{Names: []string{"mariadb-dump", "mysqldump"}, Field: "mysqldump_path", Package: "mariadb-client (or default-mysql-client)", set: func(t *Tools, p string) { t.MySQLDump = p }},
			{Names: []string{"mariadb", "mysql"}, Field: "mysql_path", Package: "mariadb-client (or default-mysql-client)", set: func(t *Tools, p string) { t.MySQL = p }},
		}
	}
	return nil
}

// FindTools resolves the programs of engine. configured maps a Tool's
// Field to the path the config gives; an empty or missing entry means
// "find it on PATH". The error says which package to install.
func FindTools(engine string, configured map[string]string) (Tools, error) {
	var tools Tools
	for _, tool := range ToolsFor(engine) {
		if p := configured[tool.Field]; p != "" {
			abs, err := exec.LookPath(p)
			if err != nil {
				return Tools{}, fmt.Errorf("%s: %s cannot be run: %v", tool.Field, p, err)
			}
			tool.set(&tools, abs)
			continue
		}
		found := ""
		for _, name := range tool.Names {
			if p, err := exec.LookPath(name); err == nil {
				found = p
				break
			}
		}
		if found == "" {
			return Tools{}, fmt.Errorf("%s is not on PATH: install the Debian package %s (apt-get install %s), or set %s to the program",
				tool.Names[0], tool.Package, firstWord(tool.Package), tool.Field)
		}
		tool.set(&tools, found)
	}
	return tools, nil
}

func firstWord(s string) string {
	for i, r := range s {
		if r == ' ' {
			return s[:i]
		}
	}
	return s
}
