package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable returns s fit for a terminal: every control character, every
// invisible formatting character (bidi overrides included) and every byte
// that is not UTF-8 is written as a Go escape (\x1b, \u202e, \xff), so that
// text from outside (a verdict's message, a job's log, a database's table
// names, a server's error) can neither colour, move nor rewrite what the
// terminal shows. Newlines stay, so that multi-line messages read as
// such; printable text, backslashes included, is left as it is.
//
// Every text the CLI prints that did not come from the CLI itself goes
// through here; JSON output needs not, as encoding/json escapes control
// characters already.
func printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case r == '\n' || r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r != '\n' && r != ' ' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
