package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// maxBody is the largest request body the API reads: every request is a
// few names and numbers.
const maxBody = 1 << 20

// decode reads a request's body into v, a pointer to one of this
// package's request structs. The body must be exactly one JSON object
// whose keys are v's JSON field names, spelt exactly (encoding/json alone
// would take "VAULT" for "vault"), each once, with nothing after it. A
// body that does not fit is refused with a 400 naming the field or the
// problem, so that a client's typo is never silently taken for a default.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return badRequest("the request body is larger than %d bytes: send only the request's fields", maxBody)
		}
		return badRequest("read request body: %v", err)
	}
	if err := decodeStrict(body, v); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// decodeStrict is decode's check of one body.
func decodeStrict(body []byte, v any) error {
	names := fieldNames(v)
	example := "{" + strings.Join(quoteAll(names), ": …, ") + ": …}"
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("the request body is empty: send a JSON object such as %s", example)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("the request body is not JSON (%v): send a JSON object such as %s", err, example)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("the request body must be a JSON object such as %s, not %s", example, describeToken(tok))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("the request body is not valid JSON: %v", err)
		}
		key, _ := tok.(string) // inside an object, json.Decoder yields only string keys
		if !slices.Contains(names, key) {
			return unknownField(key, names)
		}
		if seen[key] {
			return fmt.Errorf("field %q is given twice: give it once", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return fmt.Errorf("field %q: the value is not valid JSON: %v", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fmt.Errorf("the request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("the request body holds more after its JSON object: send exactly one object")
	}
	// The keys are known and exact, so the standard decoder now reads the
	// values; only their types can still be wrong.
	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			if f, ok := fieldType(v, typeErr.Field); ok && f.Kind() == reflect.Map && f.Elem() == typeErr.Type {
				return fmt.Errorf("field %q must be %s: one value is a JSON %s", typeErr.Field, kindOf(f), typeErr.Value)
			}
			return fmt.Errorf("field %q must be %s, not a JSON %s", typeErr.Field, kindOf(typeErr.Type), typeErr.Value)
		}
		return fmt.Errorf("the request body does not fit: %v", err)
	}
	return nil
}

// fieldNames lists the JSON keys of the struct v points to, in order.
func fieldNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// fieldType returns the type of the field of the struct v points to whose
// JSON key is name.
func fieldType(v any, name string) (reflect.Type, bool) {
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name || tag == "" && f.Name == name {
			return f.Type, true
		}
	}
	return nil, false
}

func unknownField(key string, names []string) error {
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return fmt.Errorf("unknown field %q: did you mean %q? Field names are lower case", key, n)
		}
	}
	return fmt.Errorf("unknown field %q: the fields are %s", key, strings.Join(quoteAll(names), ", "))
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}

// describeToken names what a body held instead of an object.
func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return fmt.Sprint(t)
	}
	return fmt.Sprint(tok)
}

// kindOf says in words what JSON a Go type takes.
func kindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(kindOf(t.Elem()), "a ") + " values"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a " + t.String()
}
