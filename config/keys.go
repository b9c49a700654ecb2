package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// unknownField is how yaml.v3 words a key the struct has no field for
// (KnownFields): "line 5: field storag not found in type config.Vault".
var unknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)

// decodeErrors turns yaml's errors about the values it could not take into
// one error each, naming an unknown key's nearest known key ("did you
// mean"). It reports false for an error that is not about values (bad
// YAML), after which nothing of the file can be trusted.
func decodeErrors(err error) ([]error, bool) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return nil, false
	}
	keys := knownKeys()
	var errs []error
	for _, msg := range te.Errors {
		m := unknownField.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, errors.New(msg))
			continue
		}
		line, key, typ := m[1], m[2], m[3]
		known, ok := keys[typ]
		if !ok {
			errs = append(errs, fmt.Errorf("line %s: unknown key %q", line, key))
			continue
		}
		what := entryName(typ)
		if best := nearest(key, known); best != "" {
			errs = append(errs, fmt.Errorf("line %s: unknown key %q in %s: did you mean %q?", line, key, what, best))
		} else {
			errs = append(errs, fmt.Errorf("line %s: unknown key %q in %s (its keys: %s)", line, key, what, strings.Join(known, ", ")))
		}
	}
	return errs, true
}

// valueError is a value an UnmarshalYAML method refuses. As a
// *yaml.TypeError it lets yaml go on decoding the rest of the file, so
// that the problems after it are found too.
func valueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// knownKeys maps each struct type of the configuration, as yaml names it
// ("config.Vault"), to its YAML keys in field order.
func knownKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		if _, seen := out[t.String()]; seen {
			return
		}
		out[t.String()] = nil
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			keys = append(keys, name)
			walk(f.Type)
		}
		out[t.String()] = keys
	}
	walk(reflect.TypeFor[Config]())
	return out
}

// entryName says which part of the file a struct type is, for people:
// config.RestoreTestPlan is "a restore test plan", config.HTTPCheck "an
// HTTP check".
func entryName(typ string) string {
	name := typ[strings.LastIndex(typ, ".")+1:]
	if name == "Config" {
		return "the top level"
	}
	// Words start at an upper-case letter after a lower-case one, or at
	// the last capital of a run that a lower-case letter follows
	// (HTTPCheck: HTTP, Check). Acronyms stay in capitals.
	r := []rune(name)
	var words []string
	start := 0
	for i := 1; i <= len(r); i++ {
		if i == len(r) || unicode.IsUpper(r[i]) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			words = append(words, string(r[start:i]))
			start = i
		}
	}
	for i, w := range words {
		if w != strings.ToUpper(w) || len(w) == 1 {
			words[i] = strings.ToLower(w)
		}
	}
	s := strings.Join(words, " ")
	first := words[0]
	switch {
	case strings.HasSuffix(s, "s"):
		return "the " + s
	case first == strings.ToUpper(first) && len(first) > 1 && strings.ContainsRune("AEFHILMNORSX", rune(first[0])),
		first != strings.ToUpper(first) && strings.ContainsRune("aeiou", rune(first[0])):
		return "an " + s
	}
	return "a " + s
}

// nearest returns the key of known closest to key, if it is close enough
// to be a slip of the keyboard: at most a third of its letters differ
// (and at least one may).
func nearest(key string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		d := editDistance(strings.ToLower(key), k)
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist < 0 || bestDist > max(1, len([]rune(best))/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b: the fewest
// letters to insert, delete or replace to turn one into the other.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
