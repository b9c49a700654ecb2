// Package dumpcount counts the rows of each table of a MySQL or MariaDB
// dump as the dump streams past: a mariadb-dump --single-transaction
// snapshot cannot be shared with a second connection that would count
// them, so the dump itself is read for the counts a restore test checks
// the restored copy against.
package dumpcount

import (
	"bytes"

	"github.com/vigil-backup/vigil"
)

// Counter counts the rows of each table in a mysqldump/mariadb-dump
// stream as it passes (it is one side of an io.MultiWriter).
//
// It is a lexer that splits the stream into statements the way the mariadb
// client will when the dump is restored: delimiters (and the client's
// DELIMITER command), quoted strings and identifiers, /* */, -- and #
// comments, and the sql_mode flags that change how the client reads quotes.
// Only two kinds of statement matter: CREATE TABLE, which adds a table, and
// INSERT (or REPLACE) … VALUES, whose top-level tuples are its rows.
// Everything inside comments, including executable /*! … */ comments, is
// not a table and holds no rows: that is where old dumps put their view
// placeholders and where triggers live.
//
// Write may be called with any chunking of the stream: a construct cut by a
// chunk boundary waits in carry for the next Write.
type Counter struct {
	// carry holds the unscanned tail of the previous Write: the start of a
	// construct (a comment opener, a delimiter, an escape, the DELIMITER
	// command) that needs bytes the Write did not have.
	carry  [carrySize]byte
	ncarry int

	// delim is the statement delimiter, in delimBuf.
	delim    []byte
	delimBuf [maxDelimiter]byte
	// skipStop and tupleStop are the bytes the fast loops stop at: those
	// that may begin a string, a comment or the delimiter, and for
	// tupleStop also parentheses.
	skipStop  [256]bool
	tupleStop [256]bool

	lex       lexState
	quote     byte // the quote of the string or identifier lex is in
	escapes   bool // whether a backslash escapes in that string
	inExec    bool // inside /*! … */ (or /*M! … */, /*+ … */)
	execDigit bool // right after /*!, where the version number is
	lineStart bool // nothing but blanks since the last newline
	stmtEmpty bool // the statement has no code yet (comments aside)

	// The DELIMITER command being read.
	delimArg      []byte
	delimArgState uint8
	delimArgQuote byte

	// The statement being read.
	mode       stmtMode
	head       headState
	ntok       int  // tokens seen in the statement, comments' included
	inWord     bool // tok holds a word still being read
	pending    byte // tok holds an identifier or string closed by this quote, which a doubled quote would continue
	tok        []byte
	name       []byte // the table name read so far
	columnsPar int    // parentheses open in INSERT's column list

	// The INSERT being counted.
	table      int // index in tables
	depth      int // parentheses open in the current tuple
	afterTuple bool

	// The SET statement being read, kept to follow sql_mode.
	setToks []setToken
	setText []byte

	// sqlMode is the client session's sql_mode as the dump sets it, and
	// vars the user variables the dump saved a sql_mode in.
	sqlMode sqlMode
	vars    map[string]sqlMode

	tables []vigil.TableRows
	index  map[string]int
}

const (
	// maxDelimiter is the mariadb client's limit on a delimiter (its
	// delimiter[16] holds a C string).
	maxDelimiter = 15
	// maxLookahead is the most bytes one decision needs: the delimiter, or
	// "delimiter" and a blank.
	maxLookahead = maxDelimiter + 1
	// carrySize leaves room after a carried tail for the next bytes of a
	// construct, so that a Write always gets past its carry.
	carrySize = 4 * maxLookahead
	// maxToken bounds a kept token: names are at most 64 characters and
	// sql_mode lists a few hundred bytes.
	maxToken = 4096
	// maxSetTokens and maxSetText bound a kept SET statement.
	maxSetTokens = 256
	maxSetText   = 16 << 10
)

type lexState uint8

const (
	lexCode          lexState = iota
	lexQuoted                 // in '…', "…" or `…`
	lexComment                // in /* … */
	lexLineComment            // in -- … or # … up to the newline
	lexDelimiterLine          // on a DELIMITER line, up to the newline
)

// The states of reading a DELIMITER command's argument.
const (
	beforeArg uint8 = iota
	inArg
	inQuotedArg
	quoteInArg // a quote inside a quoted argument: doubled, or its end
	afterArg
)

type stmtMode uint8

const (
	modeHead   stmtMode = iota // reading the first tokens to learn what the statement is
	modeSkip                   // nothing more to learn from this statement
	modeSet                    // a SET statement, kept whole to follow sql_mode
	modeValues                 // in INSERT … VALUES, counting tuples
)

// headState is where the first tokens of a statement have got to.
type headState uint8

const (
	headStart      headState = iota
	headCreate               // CREATE [OR REPLACE]
	headCreateOr             // CREATE OR
	headTable                // CREATE TABLE, before the name or IF NOT EXISTS
	headIf                   // CREATE TABLE IF
	headIfNot                // CREATE TABLE IF NOT
	headTableName            // CREATE TABLE name, maybe followed by .part
	headTableDot             // CREATE TABLE name.
	headInsert               // INSERT|REPLACE [modifiers], before INTO or the name
	headInsertName           // INSERT INTO, before the name
	headInsertAt             // INSERT INTO name, maybe followed by .part, columns or VALUES
	headInsertDot            // INSERT INTO name.
	headColumns              // in INSERT's column list
	headValues               // after the column list, before VALUES
)

type tokenKind uint8

const (
	tokWord   tokenKind = iota // keyword, bare name, number, @variable
	tokIdent                   // `quoted` identifier ("quoted" under ANSI_QUOTES)
	tokString                  // 'string' ("string" without ANSI_QUOTES)
	tokPunct                   // any other byte
)

// setToken is one token of a SET statement, its text in setText.
type setToken struct {
	kind       tokenKind
	start, end int
}

// sqlMode holds the sql_mode flags that change how the client lexes.
type sqlMode uint8

const (
	// modeNoBackslashEscapes: a backslash in a string is an ordinary
	// character. mariadb-dump sets it around a trigger, routine or event
	// created under it, whose body it then writes as it was written.
	modeNoBackslashEscapes sqlMode = 1 << iota
	// modeANSIQuotes: "…" is an identifier, in which a backslash is an
	// ordinary character (--compatible=ansi dumps write names so).
	modeANSIQuotes
)

// New returns a counter of the rows in a mysqldump/mariadb-dump stream.
func New() *Counter {
	c := &Counter{
		lineStart: true,
		stmtEmpty: true,
		vars:      map[string]sqlMode{},
		index:     map[string]int{},
	}
	c.setDelimiter([]byte(";"))
	return c
}

// Write counts p. It never fails, so that the dump it watches never does
// because of it.
func (c *Counter) Write(p []byte) (int, error) {
	n := len(p)
	if c.ncarry > 0 {
		// Finish what the last Write left off with the start of p.
		k := copy(c.carry[c.ncarry:], p)
		buf := c.carry[:c.ncarry+k]
		used := c.scan(buf)
		if used < c.ncarry {
			// Still short of lookahead, which can only be because all of
			// p is in buf (carrySize leaves room for any construct).
			c.ncarry = copy(c.carry[:], buf[used:])
			return n, nil
		}
		p = p[used-c.ncarry:]
		c.ncarry = 0
	}
	used := c.scan(p)
	c.ncarry = copy(c.carry[:], p[used:])
	return n, nil
}

// Tables returns every table the dump creates, in dump order, with the
// number of rows its INSERT statements hold. A table that the dump fills
// but does not create (a --no-create-info dump) comes where its first
// INSERT is.
func (c *Counter) Tables() []vigil.TableRows {
	return append([]vigil.TableRows{}, c.tables...)
}

// scan reads buf as far as it can decide, and returns how far that is:
// less than len(buf) only when the rest starts a construct it needs more
// bytes to tell (less than maxLookahead of them).
func (c *Counter) scan(buf []byte) int {
	i := 0
	for i < len(buf) {
		var ok bool
		switch c.lex {
		case lexCode:
			i, ok = c.scanCode(buf, i)
		case lexQuoted:
			i, ok = c.scanQuoted(buf, i)
		case lexComment:
			i, ok = c.scanComment(buf, i)
		case lexLineComment:
			i, ok = c.scanLineComment(buf, i)
		case lexDelimiterLine:
			i, ok = c.scanDelimiterLine(buf, i)
		}
		if !ok {
			return i
		}
	}
	return i
}

// scanQuoted reads a string or a quoted identifier up to its closing quote,
// keeping its text when the statement's head needs it. (scanTuples reads
// most strings of rows itself.)
func (c *Counter) scanQuoted(buf []byte, i int) (int, bool) {
	q, esc := c.quote, c.escapes
	keep := c.keeping()
	start := i
	for i < len(buf) {
		b := buf[i]
		if b == q {
			if keep {
				c.keep(buf[start:i])
				c.pending = q
			}
			c.lex = lexCode
			return i + 1, true
		}
		if b == '\\' && esc {
			if i+1 == len(buf) {
				if keep {
					c.keep(buf[start:i])
				}
				return i, false
			}
			if keep {
				c.keep(buf[start:i])
				c.keep(buf[i+1 : i+2])
			}
			i += 2
			start = i
			continue
		}
		i++
	}
	if keep {
		c.keep(buf[start:])
	}
	return i, true
}

// scanComment reads a /* */ comment up to its end. Quotes mean nothing in
// it, as they mean nothing to the client.
func (c *Counter) scanComment(buf []byte, i int) (int, bool) {
	if j := bytes.Index(buf[i:], []byte("*/")); j >= 0 {
		c.lex = lexCode
		return i + j + 2, true
	}
	if buf[len(buf)-1] == '*' {
		return len(buf) - 1, false
	}
	return len(buf), true
}

func (c *Counter) scanLineComment(buf []byte, i int) (int, bool) {
	j := bytes.IndexByte(buf[i:], '\n')
	if j < 0 {
		return len(buf), true
	}
	c.lex = lexCode
	c.lineStart = true
	return i + j + 1, true
}

// scanDelimiterLine reads the argument of the client's DELIMITER command
// as the client's get_arg does: the first blank-separated word, or a
// quoted one; the rest of the line is ignored.
func (c *Counter) scanDelimiterLine(buf []byte, i int) (int, bool) {
	for ; i < len(buf); i++ {
		b := buf[i]
		if b == '\n' {
			if c.delimArgState == inArg || c.delimArgState == quoteInArg {
				c.delimArg = bytes.TrimRight(c.delimArg, "\r")
				if len(c.delimArg) > 0 && bytes.IndexByte(c.delimArg, '\\') < 0 {
					c.setDelimiter(c.delimArg)
				}
			}
			// An unquoted argument that never ended, an empty one, or one
			// with a backslash: the client says so and keeps its delimiter.
			c.lex = lexCode
			c.lineStart = true
			return i + 1, true
		}
		switch c.delimArgState {
		case beforeArg:
			switch {
			case isBlank(b):
			case b == '\'' || b == '"' || b == '`':
				c.delimArgQuote = b
				c.delimArgState = inQuotedArg
			default:
				c.delimArg = append(c.delimArg[:0], b)
				c.delimArgState = inArg
			}
		case inArg:
			if b == ' ' {
				c.delimArgState = afterArg
				c.setDelimiterArg()
			} else {
				c.appendDelimArg(b)
			}
		case inQuotedArg:
			if b == c.delimArgQuote {
				c.delimArgState = quoteInArg
			} else {
				c.appendDelimArg(b)
			}
		case quoteInArg:
			if b == c.delimArgQuote {
				c.appendDelimArg(b)
				c.delimArgState = inQuotedArg
			} else {
				c.delimArgState = afterArg
				c.setDelimiterArg()
			}
		}
	}
	return i, true
}

func (c *Counter) appendDelimArg(b byte) {
	if len(c.delimArg) < maxDelimiter {
		c.delimArg = append(c.delimArg, b)
	}
}

// setDelimiterArg applies a DELIMITER argument once it has ended before
// the end of the line.
func (c *Counter) setDelimiterArg() {
	if len(c.delimArg) > 0 && bytes.IndexByte(c.delimArg, '\\') < 0 {
		c.setDelimiter(c.delimArg)
	}
	c.delimArg = c.delimArg[:0]
}

// setDelimiter makes d the statement delimiter and teaches the fast loops
// its first byte.
func (c *Counter) setDelimiter(d []byte) {
	c.delim = c.delimBuf[:copy(c.delimBuf[:], d)]
	c.skipStop = [256]bool{}
	for _, b := range []byte("'\"`#-/*") {
		c.skipStop[b] = true
	}
	c.skipStop[c.delim[0]] = true
	c.tupleStop = c.skipStop
	c.tupleStop['('] = true
	c.tupleStop[')'] = true
}

// scanCode reads code: it runs fast over the bytes the statement's mode
// does not care about, and stops at the constructs that change the lexer's
// state.
func (c *Counter) scanCode(buf []byte, i int) (int, bool) {
	for i < len(buf) {
		// The fast loops. A statement already known to be uninteresting,
		// and an executable comment after the statement's first token (for
		// which the statement's kind is already known), only need the bytes
		// that may start a string, a comment or the delimiter. Rows have
		// their own loop.
		switch {
		case c.mode == modeSkip || (c.mode == modeHead && c.inExec && c.ntok > 0):
			for i < len(buf) && !c.skipStop[buf[i]] {
				i++
			}
		case c.mode == modeValues && !c.inExec:
			i = c.scanTuples(buf, i)
			if c.lex != lexCode {
				return i, true
			}
		}
		if i == len(buf) {
			break
		}
		b := buf[i]

		// A quote right after a closed identifier or string doubles it.
		if c.pending != 0 {
			if b == c.pending {
				c.keep(buf[i : i+1])
				c.pending = 0
				c.lex = lexQuoted
				return i + 1, true
			}
			c.flushToken()
		}

		// The client reads a line that starts with DELIMITER, while no
		// statement is under way, as its own command.
		if c.lineStart && c.stmtEmpty && (b == 'd' || b == 'D') {
			isCmd, decided := delimiterCommand(buf[i:])
			if !decided {
				return i, false
			}
			if isCmd {
				c.lex = lexDelimiterLine
				c.delimArg = c.delimArg[:0]
				c.delimArgState = beforeArg
				return i + len("delimiter"), true
			}
		}

		// The delimiter comes first: the client looks for it before
		// anything else outside strings and comments.
		if b == c.delim[0] {
			if len(buf)-i < len(c.delim) {
				if bytes.HasPrefix(c.delim, buf[i:]) {
					return i, false
				}
			} else if bytes.HasPrefix(buf[i:], c.delim) {
				c.endStatement()
				i += len(c.delim)
				continue
			}
		}

		switch b {
		case '\'', '"', '`':
			c.flushToken()
			c.openQuote(b)
			return i + 1, true
		case '#':
			c.flushToken()
			c.lex = lexLineComment
			return i + 1, true
		case '-':
			// "-- " (a blank or the end of the line after it) starts a
			// comment; so does "--" at a statement's start.
			if len(buf)-i < 2 || (buf[i+1] == '-' && !c.stmtEmpty && len(buf)-i < 3) {
				return i, false
			}
			if buf[i+1] == '-' && (c.stmtEmpty || isSpace(buf[i+2])) {
				c.flushToken()
				c.lex = lexLineComment
				return i + 2, true
			}
		case '/':
			n, decided := commentOpener(buf[i:])
			if !decided {
				return i, false
			}
			switch n {
			case 2:
				c.flushToken()
				c.lex = lexComment
				c.lineStart = false
				return i + 2, true
			case 3, 4:
				// An executable comment is code to the client (it tracks
				// quotes in it) but comment to the counting.
				c.flushToken()
				c.inExec = true
				c.execDigit = true
				c.stmtEmpty = false
				c.lineStart = false
				i += n
				continue
			}
		case '*':
			if c.inExec {
				if len(buf)-i < 2 {
					return i, false
				}
				if buf[i+1] == '/' {
					c.flushToken()
					c.inExec = false
					c.execDigit = false
					i += 2
					continue
				}
			}
		}

		c.codeByte(b)
		i++
	}
	return i, true
}

// scanTuples is the fast loop of INSERT … VALUES, where most of a dump's
// bytes are. It does what the general path would do with the bytes that
// make up rows (parentheses, commas, blanks, '…' strings, minus signs)
// and returns at any other byte, which the general path then handles, or
// with lex set to lexQuoted if a string does not end in buf. Its state is
// in locals while it runs, for speed.
func (c *Counter) scanTuples(buf []byte, i int) int {
	var rows int64
	openString := false
	depth, afterTuple := c.depth, c.afterTuple
	stop, d0 := &c.tupleStop, c.delim[0]
	esc := c.sqlMode&modeNoBackslashEscapes == 0
loop:
	for i < len(buf) {
		if depth == 0 {
			switch b := buf[i]; {
			case b == d0:
				break loop
			case b == '\n' || b == ' ' || b == '\t' || b == '\r':
			case b == ',' && afterTuple:
				afterTuple = false
			case b == '(' && !afterTuple:
				depth = 1
			default:
				break loop
			}
			i++
			continue
		}
		for i < len(buf) && !stop[buf[i]] {
			i++
		}
		if i == len(buf) {
			break
		}
		switch b := buf[i]; {
		case b == d0:
			break loop
		case b == '(':
			depth++
		case b == ')':
			if depth--; depth == 0 {
				rows++
				afterTuple = true
			}
		case b == '-':
			// A minus sign, unless it may start a -- comment.
			if i+1 == len(buf) || buf[i+1] == '-' {
				break loop
			}
		case b == '\'':
			j := i + 1
			for j < len(buf) {
				if x := buf[j]; x == '\'' {
					break
				} else if x == '\\' && esc {
					j++
				}
				j++
			}
			if j >= len(buf) {
				// The string goes on in the next Write.
				openString = true
				i++
				break loop
			}
			i = j
		default:
			break loop
		}
		i++
	}
	c.depth, c.afterTuple = depth, afterTuple
	c.tables[c.table].Rows += rows
	if openString {
		c.openQuote('\'')
	}
	return i
}

// delimiterCommand reports whether b starts with "delimiter" and a blank,
// and whether b is long enough to tell.
func delimiterCommand(b []byte) (isCmd, decided bool) {
	const word = "delimiter"
	n := min(len(b), len(word))
	if !bytes.EqualFold(b[:n], []byte(word[:n])) {
		return false, true
	}
	if len(b) <= len(word) {
		return false, false
	}
	return isSpace(b[len(word)]), true
}

// commentOpener reads b, which starts with '/': 0 if it opens no comment,
// 2 for /*, 3 for /*! or /*+, 4 for /*M!; and whether b is long enough to
// tell.
func commentOpener(b []byte) (n int, decided bool) {
	if len(b) < 2 {
		return 0, false
	}
	if b[1] != '*' {
		return 0, true
	}
	if len(b) < 3 {
		return 0, false
	}
	switch b[2] {
	case '!', '+':
		return 3, true
	case 'M':
		if len(b) < 4 {
			return 0, false
		}
		if b[3] == '!' {
			return 4, true
		}
	}
	return 2, true
}

// openQuote starts a string or quoted identifier.
func (c *Counter) openQuote(q byte) {
	c.lex = lexQuoted
	c.quote = q
	switch q {
	case '\'':
		c.escapes = c.sqlMode&modeNoBackslashEscapes == 0
	case '"':
		c.escapes = c.sqlMode&(modeNoBackslashEscapes|modeANSIQuotes) == 0
	default:
		c.escapes = false
	}
	c.stmtEmpty = false
	c.lineStart = false
	c.execDigit = false
	switch {
	case c.keeping():
		c.tok = c.tok[:0]
	case c.mode == modeValues && c.depth == 0 && !c.inExec:
		// A string where a tuple should be: this is no row list.
		c.mode = modeSkip
	}
}

// keeping reports whether the statement's tokens are read: in its head, and
// all through a SET statement.
func (c *Counter) keeping() bool {
	return c.mode == modeSet || (c.mode == modeHead && !(c.inExec && c.ntok > 0))
}

// keep adds b to the token being read.
func (c *Counter) keep(b []byte) {
	room := maxToken - len(c.tok)
	if len(b) > room {
		b = b[:room]
	}
	c.tok = append(c.tok, b...)
}

// codeByte handles a code byte that is not part of a lexical construct.
func (c *Counter) codeByte(b byte) {
	switch c.mode {
	case modeHead, modeSet:
		c.headByte(b)
	case modeValues:
		// Rows inside a comment, even an executable one, do not count.
		if !c.inExec {
			c.valuesByte(b)
		}
	}
}

// headByte reads the tokens of a statement's head, or of a SET statement.
func (c *Counter) headByte(b byte) {
	if c.execDigit {
		// The version of /*!40101 is not a token.
		if isDigit(b) {
			return
		}
		c.execDigit = false
	}
	if isWordByte(b) {
		if !c.inWord {
			c.inWord = true
			c.tok = c.tok[:0]
		}
		if len(c.tok) < maxToken {
			c.tok = append(c.tok, b)
		}
		c.stmtEmpty = false
		c.lineStart = false
		return
	}
	c.flushToken()
	if isSpace(b) {
		if b == '\n' {
			c.lineStart = true
		}
		return
	}
	c.stmtEmpty = false
	c.lineStart = false
	if c.mode == modeValues {
		// The word just ended was VALUES.
		c.valuesByte(b)
		return
	}
	if c.mode == modeHead || c.mode == modeSet {
		c.tok = append(c.tok[:0], b)
		c.token(tokPunct, c.tok)
	}
}

// flushToken passes on the word or quoted token that has just ended.
func (c *Counter) flushToken() {
	switch {
	case c.inWord:
		c.inWord = false
		c.token(tokWord, c.tok)
	case c.pending != 0:
		kind := tokString
		if c.pending == '`' || (c.pending == '"' && c.sqlMode&modeANSIQuotes != 0) {
			kind = tokIdent
		}
		c.pending = 0
		c.token(kind, c.tok)
	}
}

// token takes the next token of a statement's head (or SET statement) and
// moves the head on, deciding the statement's mode.
func (c *Counter) token(kind tokenKind, text []byte) {
	c.ntok++
	if c.mode == modeSet {
		c.keepSetToken(kind, text)
		return
	}
	if c.mode != modeHead {
		return
	}
	if c.ntok == 1 && kind == tokWord && keyword(text, "SET") {
		// SET statements, commented or not, are followed for sql_mode.
		c.mode = modeSet
		c.setToks = c.setToks[:0]
		c.setText = c.setText[:0]
		return
	}
	if c.inExec {
		// Comments create no tables and hold no rows.
		return
	}
	word := kind == tokWord
	switch c.head {
	case headStart:
		switch {
		case word && keyword(text, "CREATE"):
			c.head = headCreate
		case word && (keyword(text, "INSERT") || keyword(text, "REPLACE")):
			c.head = headInsert
		default:
			c.mode = modeSkip
		}
	case headCreate:
		switch {
		case word && keyword(text, "OR"):
			c.head = headCreateOr
		case word && keyword(text, "TABLE"):
			c.head = headTable
		default:
			// VIEW, PROCEDURE, TRIGGER, DATABASE, ALGORITHM=…, DEFINER=…
			c.mode = modeSkip
		}
	case headCreateOr:
		if word && keyword(text, "REPLACE") {
			c.head = headCreate
		} else {
			c.mode = modeSkip
		}
	case headTable:
		switch {
		case word && keyword(text, "IF"):
			c.head = headIf
		case word || kind == tokIdent:
			c.startName(text)
			c.head = headTableName
		default:
			c.mode = modeSkip
		}
	case headIf:
		if word && keyword(text, "NOT") {
			c.head = headIfNot
		} else {
			c.mode = modeSkip
		}
	case headIfNot:
		if word && keyword(text, "EXISTS") {
			c.head = headTable
		} else {
			c.mode = modeSkip
		}
	case headTableName:
		if kind == tokPunct && text[0] == '.' {
			c.head = headTableDot
			return
		}
		c.addTable()
		c.mode = modeSkip
	case headTableDot:
		if word || kind == tokIdent {
			c.addNamePart(text)
			c.head = headTableName
		} else {
			c.mode = modeSkip
		}
	case headInsert:
		switch {
		case word && (keyword(text, "LOW_PRIORITY") || keyword(text, "DELAYED") ||
			keyword(text, "HIGH_PRIORITY") || keyword(text, "IGNORE")):
		case word && keyword(text, "INTO"):
			c.head = headInsertName
		case word || kind == tokIdent:
			c.startName(text)
			c.head = headInsertAt
		default:
			c.mode = modeSkip
		}
	case headInsertName:
		if word || kind == tokIdent {
			c.startName(text)
			c.head = headInsertAt
		} else {
			c.mode = modeSkip
		}
	case headInsertAt:
		switch {
		case kind == tokPunct && text[0] == '.':
			c.head = headInsertDot
		case kind == tokPunct && text[0] == '(':
			c.head = headColumns
			c.columnsPar = 1
		case word && (keyword(text, "VALUES") || keyword(text, "VALUE")):
			c.startValues()
		default:
			// INSERT … SELECT, INSERT … SET: not a dump's.
			c.mode = modeSkip
		}
	case headInsertDot:
		if word || kind == tokIdent {
			c.addNamePart(text)
			c.head = headInsertAt
		} else {
			c.mode = modeSkip
		}
	case headColumns:
		if kind == tokPunct {
			switch text[0] {
			case '(':
				c.columnsPar++
			case ')':
				if c.columnsPar--; c.columnsPar == 0 {
					c.head = headValues
				}
			}
		}
	case headValues:
		if word && (keyword(text, "VALUES") || keyword(text, "VALUE")) {
			c.startValues()
		} else {
			c.mode = modeSkip
		}
	}
}

func (c *Counter) startName(text []byte) {
	c.name = append(c.name[:0], text...)
}

// addNamePart qualifies the name read so far: db.table.
func (c *Counter) addNamePart(text []byte) {
	c.name = append(append(c.name, '.'), text...)
}

// addTable records the table a CREATE TABLE names, once.
func (c *Counter) addTable() int {
	if i, ok := c.index[string(c.name)]; ok {
		return i
	}
	name := string(c.name)
	c.index[name] = len(c.tables)
	c.tables = append(c.tables, vigil.TableRows{Name: name})
	return len(c.tables) - 1
}

// startValues begins counting an INSERT's tuples.
func (c *Counter) startValues() {
	c.table = c.addTable()
	c.mode = modeValues
	c.depth = 0
	c.afterTuple = false
}

// valuesByte follows the tuples after VALUES: a row is a top-level
// parenthesised tuple, and the list ends at anything but a comma between
// tuples (ON DUPLICATE KEY UPDATE, say, whose VALUES(a) is no row).
func (c *Counter) valuesByte(b byte) {
	if c.depth > 0 {
		switch b {
		case '(':
			c.depth++
		case ')':
			if c.depth--; c.depth == 0 {
				c.tables[c.table].Rows++
				c.afterTuple = true
			}
		}
		return
	}
	switch {
	case isSpace(b):
	case b == '(' && !c.afterTuple:
		c.depth = 1
	case b == ',' && c.afterTuple:
		c.afterTuple = false
	default:
		c.mode = modeSkip
	}
}

// endStatement is the delimiter: it finishes what the statement's head
// was reading and readies the next statement.
func (c *Counter) endStatement() {
	c.flushToken()
	switch {
	case c.mode == modeHead && c.head == headTableName:
		c.addTable()
	case c.mode == modeSet:
		c.applySet()
	}
	c.mode = modeHead
	c.head = headStart
	c.ntok = 0
	c.inWord = false
	c.pending = 0
	c.depth = 0
	c.afterTuple = false
	// A statement is parsed afresh by the server, whatever comment the
	// previous one left open.
	c.inExec = false
	c.execDigit = false
	c.stmtEmpty = true
	c.lineStart = false
}

// keepSetToken adds a token to the SET statement being read.
func (c *Counter) keepSetToken(kind tokenKind, text []byte) {
	if len(c.setToks) == maxSetTokens || len(c.setText)+len(text) > maxSetText {
		return
	}
	start := len(c.setText)
	c.setText = append(c.setText, text...)
	c.setToks = append(c.setToks, setToken{kind: kind, start: start, end: len(c.setText)})
}

// applySet follows a SET statement's assignments to sql_mode, and to user
// variables that save and restore it, the ones mariadb-dump writes:
//
//	SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO'
//	SET @saved_sql_mode = @@sql_mode
//	SET sql_mode = 'NO_BACKSLASH_ESCAPES'
//	SET sql_mode = @saved_sql_mode
//
// The client learns the new sql_mode from the server once the statement
// has run, so it applies from the next statement on. An assignment of
// anything else (an expression) leaves sql_mode as it was.
func (c *Counter) applySet() {
	// Assignments are separated by commas outside parentheses, and apply
	// in order: @OLD_SQL_MODE gets the sql_mode from before the statement.
	start, depth := 0, 0
	for j, t := range c.setToks {
		if t.kind != tokPunct {
			continue
		}
		switch c.setText[t.start] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				c.assign(c.setToks[start:j])
				start = j + 1
			}
		}
	}
	c.assign(c.setToks[start:])
}

// assign applies one target = value of a SET statement.
func (c *Counter) assign(toks []setToken) {
	eq := -1
	for j, t := range toks {
		if t.kind == tokPunct && c.setText[t.start] == '=' {
			eq = j
			break
		}
	}
	if eq < 0 {
		return
	}
	target := c.setName(toks[:eq])
	value, known := c.setValue(toks[eq+1:])
	switch {
	case target == "sql_mode":
		if known {
			c.sqlMode = value
		}
	case len(target) > 1 && target[0] == '@' && target[1] != '@':
		if known {
			c.vars[target] = value
		} else {
			delete(c.vars, target)
		}
	}
}

// setName reads the target or value of an assignment as a lower-case
// name: "sql_mode" for the session's sql_mode however written, "@name" for
// a user variable, "" for anything else.
func (c *Counter) setName(toks []setToken) string {
	var b []byte
	for _, t := range toks {
		text := c.setText[t.start:t.end]
		if t.kind == tokPunct && text[0] == ':' {
			continue // :=
		}
		if t.kind == tokWord && len(b) == 0 && (keyword(text, "SESSION") || keyword(text, "LOCAL")) {
			continue
		}
		if t.kind == tokWord && len(b) == 0 && keyword(text, "GLOBAL") {
			return ""
		}
		b = append(b, bytes.ToLower(text)...)
	}
	name := string(b)
	switch name {
	case "sql_mode", "@@sql_mode", "@@session.sql_mode", "@@local.sql_mode":
		return "sql_mode"
	}
	return name
}

// setValue evaluates the value of an assignment when it is a sql_mode: a
// string, @@sql_mode, or a user variable that holds one.
func (c *Counter) setValue(toks []setToken) (sqlMode, bool) {
	if len(toks) == 1 && toks[0].kind == tokString {
		return parseSQLMode(c.setText[toks[0].start:toks[0].end])
	}
	switch name := c.setName(toks); {
	case name == "sql_mode":
		return c.sqlMode, true
	case len(name) > 1 && name[0] == '@' && name[1] != '@':
		v, ok := c.vars[name]
		return v, ok
	}
	return 0, false
}

// parseSQLMode reads the flags the lexer cares about from a sql_mode list.
// The combination modes ANSI, DB2, MAXDB, MSSQL, ORACLE and POSTGRESQL
// include ANSI_QUOTES.
func parseSQLMode(s []byte) (sqlMode, bool) {
	var m sqlMode
	for _, f := range bytes.Split(s, []byte(",")) {
		f = bytes.TrimSpace(f)
		switch {
		case keyword(f, "NO_BACKSLASH_ESCAPES"):
			m |= modeNoBackslashEscapes
		case keyword(f, "ANSI_QUOTES"), keyword(f, "ANSI"), keyword(f, "DB2"), keyword(f, "MAXDB"),
			keyword(f, "MSSQL"), keyword(f, "ORACLE"), keyword(f, "POSTGRESQL"):
			m |= modeANSIQuotes
		case len(f) > 0 && isDigit(f[0]):
			// A numeric sql_mode: not worth decoding, keep what we had.
			return 0, false
		}
	}
	return m, true
}

// keyword reports whether text is the (upper-case) keyword kw, in any
// case.
func keyword(text []byte, kw string) bool {
	if len(text) != len(kw) {
		return false
	}
	for i := range len(kw) {
		b := text[i]
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		if b != kw[i] {
			return false
		}
	}
	return true
}

// isWordByte reports whether b can be part of a bare word: letters,
// digits, _ and $, the bytes of UTF-8 letters, and @ for variables.
func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || isDigit(b) ||
		b == '_' || b == '$' || b == '@' || b >= 0x80
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// isSpace is the client's isspace.
func isSpace(b byte) bool { return b == ' ' || b >= '\t' && b <= '\r' }

func isBlank(b byte) bool { return b == ' ' || b == '\t' }
