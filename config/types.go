package config

import (
	"strings"
)

// The resource types as the configuration knows them: where an entry's
// data comes from and which validators it takes. What a type does is its
// package under resource/; this table is its schema, and the one place in
// config that names types. A new type is one line here.
var resourceTypes = []typeRules{
	{name: "directory", source: fromFolder, defaultValidate: func() []Validator {
		return []Validator{{Checksum: &ChecksumCheck{SamplePercent: 100}}}
	}},
	{name: "app", source: fromFolder, runs: true, defaultValidate: func() []Validator {
		return []Validator{{TCP: &TCPCheck{Timeout: Duration(DefaultTCPTimeout)}}}
	}},
	{name: "postgres", source: fromServer, database: true},
	{name: "mysql", source: fromServer, database: true},
	{name: "sqlite", source: fromFile, database: true},
}

// source is where a resource's data comes from.
type source int

const (
	fromFolder source = iota // path: a folder
	fromFile                 // path: a database file
	fromServer               // dsn, dsn_env or dsn_file: a database on a server
)

type typeRules struct {
	name   string
	source source
	// runs: a restore test starts a copy (run, env; http and tcp
	// validators reach it).
	runs bool
	// database: a copy is a database (sql validators query it).
	database bool
	// defaultValidate is what a restore test checks when the entry lists
	// no validators: it always proves something. nil: the type's own
	// check (a database's tables and rows) is enough.
	defaultValidate func() []Validator
}

// rulesOf returns the rules of type t.
func rulesOf(t string) (typeRules, bool) {
	for _, r := range resourceTypes {
		if r.name == t {
			return r, true
		}
	}
	return typeRules{}, false
}

// typeNames lists the types, in the table's order.
func typeNames(keep func(typeRules) bool) []string {
	var names []string
	for _, r := range resourceTypes {
		if keep == nil || keep(r) {
			names = append(names, r.name)
		}
	}
	return names
}

// IsDatabase reports whether a copy of a resource of type t is a database.
func IsDatabase(t string) bool {
	r, _ := rulesOf(t)
	return r.database
}

// Location says where a resource's data is, for people: its folder or
// file, or, once LoadPasswords has read it, its server's DSN without the
// password.
func (r Resource) Location() string {
	if s := r.Server.String(); s != "" {
		return s
	}
	if r.Path == "" && r.Source != nil {
		return r.Source.String()
	}
	return r.Path
}

func serverTypes() string {
	return strings.Join(typeNames(func(r typeRules) bool { return r.source == fromServer }), " and ")
}
