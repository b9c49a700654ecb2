package dumpcount

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil"
)

// countDump feeds dump to a new counter in chunks of the sizes next
// returns (all of it at once if next is nil).
func countDump(dump []byte, next func() int) *Counter {
	c := New()
	if next == nil {
		c.Write(dump)
		return c
	}
	for len(dump) > 0 {
		n := min(max(next(), 1), len(dump))
		c.Write(dump[:n])
		dump = dump[n:]
	}
	return c
}

func fixed(n int) func() int { return func() int { return n } }

// sameState reports how the counters differ in what they have read (not in
// how their input was cut), or "".
func sameState(a, b *Counter) string {
	switch {
	case !slices.Equal(a.Tables(), b.Tables()):
		return fmt.Sprintf("tables %v, not %v", b.Tables(), a.Tables())
	case !bytes.Equal(a.delim, b.delim):
		return fmt.Sprintf("delimiter %q, not %q", b.delim, a.delim)
	case a.sqlMode != b.sqlMode:
		return fmt.Sprintf("sql_mode flags %b, not %b", b.sqlMode, a.sqlMode)
	case a.lex != b.lex || a.mode != b.mode || a.inExec != b.inExec:
		return fmt.Sprintf("lexer in %d/%d/%v, not %d/%d/%v", b.lex, b.mode, b.inExec, a.lex, a.mode, a.inExec)
	case !bytes.Equal(a.carry[:a.ncarry], b.carry[:b.ncarry]):
		return fmt.Sprintf("undecided tail %q, not %q", b.carry[:b.ncarry], a.carry[:a.ncarry])
	}
	return ""
}

// rows is shorthand for an expected Tables().
func rows(nameRows ...any) []vigil.TableRows {
	var t []vigil.TableRows
	for i := 0; i < len(nameRows); i += 2 {
		t = append(t, vigil.TableRows{Name: nameRows[i].(string), Rows: int64(nameRows[i+1].(int))})
	}
	return t
}

// dumpCounterCases are hand-written dumps, each with the tables and rows it
// holds. They seed FuzzDumpCounter too.
var dumpCounterCases = []struct {
	name string
	dump string
	want []vigil.TableRows
}{{
	name: "extended inserts",
	dump: "CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB;\n" +
		"INSERT INTO `t` VALUES\n(1),\n(2),\n(3);\nINSERT INTO `t` VALUES (4),(5);\n",
	want: rows("t", 5),
}, {
	name: "strings that look like rows and statements",
	dump: "CREATE TABLE `s` (a text, b text);\n" +
		`INSERT INTO ` + "`s`" + ` VALUES ('),(',');'),('it\'s','it''s'),("dq \" ),(","\\"),('\\\'','*/ /* -- # ;'),` +
		"('line\nDELIMITER ;;\nline',NULL),(NULL,'INSERT INTO `s` VALUES (1),(2);');\n" +
		"INSERT INTO `s` VALUES ('\\\\',');;');\n",
	want: rows("s", 7),
}, {
	name: "comments hide statements",
	dump: "-- INSERT INTO `t` VALUES (1);\n# INSERT INTO `t` VALUES (2);\n" +
		"/* CREATE TABLE `c` (x int); INSERT INTO `t` VALUES (3); */\n" +
		"/*!50001 CREATE TABLE `v` (\n  `x` tinyint NOT NULL\n) ENGINE=MyISAM */;\n" +
		"CREATE TABLE `t` (x int);\n" +
		"INSERT INTO `t` /* a comment ),( */ VALUES (1) -- ),(\n, (2) # ),(\n, /*!99999 (9), */ (3);\n" +
		"/*!40000 ALTER TABLE `t` DISABLE KEYS */;\n" +
		"/*!40000 INSERT INTO `t` VALUES (4) */;\n" +
		"/*!50003 INSERT*/ INTO `t` VALUES (5);\n/*!50001 CREATE*/ TABLE `c2` (x int);\n" +
		"/*!40101 a comment first */ INSERT INTO `t` VALUES (6);\n",
	want: rows("t", 4),
}, {
	name: "a comment opener cut from its comment by a non-comment",
	dump: "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1),(--1),(-1),(2/1),(2*3),(4);\n",
	want: rows("t", 6),
}, {
	name: "double dash starts a statement's comment without a blank",
	dump: "--INSERT INTO t VALUES (1);\nCREATE TABLE t (x int);\n--\nINSERT INTO t VALUES (2);\n",
	want: rows("t", 1),
}, {
	name: "procedure, trigger and event bodies",
	dump: "CREATE TABLE `t` (x int);\nCREATE TABLE `log` (x int);\n" +
		"DELIMITER ;;\n" +
		"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER `tr` AFTER INSERT ON `t` FOR EACH ROW INSERT INTO log VALUES (NEW.x),(2) */;;\n" +
		"DELIMITER ;\n" +
		"DELIMITER ;;\n" +
		"CREATE DEFINER=`root`@`%` PROCEDURE `p`()\nBEGIN\n  INSERT INTO t VALUES (1),(2);\n  INSERT INTO log VALUES (3);\nEND ;;\n" +
		"/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`%`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO INSERT INTO log VALUES (9) */ ;;\n" +
		"DELIMITER ;\n" +
		"INSERT INTO `t` VALUES (7);\n",
	want: rows("t", 1, "log", 0),
}, {
	name: "delimiters of more than one byte",
	dump: "DELIMITER $$\nCREATE TABLE a (x int)$$\nINSERT INTO a VALUES (1),(';'),(2)$$ INSERT INTO a VALUES ('$'),('$$')$$\n" +
		"delimiter //\nINSERT INTO a VALUES (4)/* // */,(5)//\n" +
		"  DeLiMiTeR\t'a''b'\nINSERT INTO a VALUES (6),('a''b')a'b\n" +
		"DELIMITER aab\nINSERT INTO a VALUES (7)aaab\nDELIMITER ;\nINSERT INTO a VALUES (8);\n",
	want: rows("a", 11),
}, {
	name: "DELIMITER only as a line's command between statements",
	dump: "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), -- DELIMITER ;;\n(2);\n" +
		"INSERT INTO t VALUES (3)\nDELIMITER ;;\n;\n" +
		"/* DELIMITER ;; */ INSERT INTO t VALUES (4);\n" +
		"/* multi-line\nDELIMITER ;;\n*/ DELIMITER ;; INSERT INTO t VALUES (5);\n" +
		"DELIMITER\nINSERT INTO t VALUES (6);\n" +
		"DELIMITER \\\\\nINSERT INTO t VALUES (7);\n",
	want: rows("t", 7),
}, {
	name: "table names",
	dump: "CREATE TABLE IF NOT EXISTS `we``ird` (x int);\nCREATE TABLE `has space`(x int);\n" +
		"create table bare_name (x int);\nCREATE OR REPLACE TABLE `rep` (x int);\n" +
		"CREATE TABLE `ünï` (x int);\nCREATE TABLE `db`.`qualified` (x int);\n" +
		"INSERT INTO `we``ird` VALUES (1);\nINSERT INTO `has space` VALUES (1),(2);\n" +
		"INSERT INTO bare_name(x) VALUES (1),(2),(3);\ninsert into `ünï` value (1);\n" +
		"INSERT INTO `db`.`qualified` VALUES (1);\n",
	want: rows("we`ird", 1, "has space", 2, "bare_name", 3, "rep", 0, "ünï", 1, "db.qualified", 1),
}, {
	name: "views are not tables",
	dump: "CREATE TABLE t (x int);\n" +
		"/*!50001 CREATE VIEW `v` AS SELECT\n 1 AS `x` */;\n" +
		"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`%` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 AS `x` */;\n" +
		"CREATE ALGORITHM=MERGE VIEW w AS SELECT 1;\nCREATE VIEW `w2` AS SELECT 1;\n",
	want: rows("t", 0),
}, {
	name: "insert variants",
	dump: "CREATE TABLE t (a int, b int);\n" +
		"INSERT  IGNORE INTO `t` VALUES (1,1),(2,2);\n" +
		"REPLACE INTO `t` VALUES (3,3);\n" +
		"INSERT INTO `t` (`a`, `b`) VALUES (4,4),(5,(5));\n" +
		"INSERT LOW_PRIORITY INTO t VALUES (6,6);\n" +
		"INSERT INTO t VALUES (7,7),(8,8) ON DUPLICATE KEY UPDATE a=VALUES(a), b=(1);\n" +
		"INSERT INTO t SELECT * FROM t;\nINSERT INTO t SET a=1;\n" +
		"INSERT INTO t VALUES (0x27,_binary '\\0\\'\\\\'),(X'5C',b'1');\n",
	want: rows("t", 10),
}, {
	name: "rows of a table the dump does not create",
	dump: "INSERT INTO `t` VALUES (1),(2);\nCREATE TABLE u (x int);\nINSERT INTO u VALUES (1);\n",
	want: rows("t", 2, "u", 1),
}, {
	name: "a trigger written under NO_BACKSLASH_ESCAPES",
	// With backslash escapes, the trigger's '\' would not end, and the
	// rest of the dump would be read inside out.
	dump: "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n" +
		"CREATE TABLE t (s text);\nINSERT INTO t VALUES ('a\\'b'),('c');\n" +
		"/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n" +
		"/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES' */ ;\n" +
		"DELIMITER ;;\n" +
		"/*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.s = CONCAT('*/;;''\\') */;;\n" +
		"DELIMITER ;\n" +
		"/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n" +
		"INSERT INTO t VALUES ('\\'),(');\n" +
		"CREATE TABLE u (s text);\nINSERT INTO u VALUES ('x\\''),('y');\n" +
		"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n",
	want: rows("t", 3, "u", 2),
}, {
	name: "ANSI_QUOTES",
	dump: "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO,ANSI' */;\n" +
		"CREATE TABLE \"q\"\"t\" (s text);\nINSERT INTO \"q\"\"t\" VALUES ('a\\'),(\\\\'),('b');\n" +
		"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n" +
		"CREATE TABLE \"s\" (s text);\nINSERT INTO `s` VALUES (\"a\\\"),(\");\n",
	want: rows("q\"t", 2, "s", 1),
}, {
	name: "sql_mode set every way",
	dump: "SET sql_mode := 'NO_BACKSLASH_ESCAPES';\nCREATE TABLE a (s text);\nINSERT INTO a VALUES ('\\'),('x');\n" +
		"SET @@session.sql_mode = '', @keep = 'no_backslash_escapes';\nINSERT INTO a VALUES ('\\''),('x');\n" +
		"SET SESSION sql_mode = @keep;\nINSERT INTO a VALUES ('\\'),('x');\n" +
		"SET GLOBAL sql_mode = '';\nINSERT INTO a VALUES ('\\'),('x');\n" +
		"SET sql_mode = CONCAT(@@sql_mode, ',ANSI');\nINSERT INTO a VALUES ('\\'),('x');\n" +
		"SET @keep = @@character_set_client, sql_mode = @keep;\nINSERT INTO a VALUES ('\\'),('x');\n" +
		"SET @@sql_mode = DEFAULT, LOCAL sql_mode='';\nINSERT INTO a VALUES ('\\''),('x');\n",
	want: rows("a", 14),
}, {
	name: "mariadb-dump's sandbox line and header",
	dump: "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n--\n" +
		"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n" +
		"/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;\n" +
		"DROP TABLE IF EXISTS `t`;\nCREATE TABLE `t` (x int);\r\nINSERT INTO `t` VALUES (1);\r\n",
	want: rows("t", 1),
}, {
	name: "a truncated dump",
	dump: "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1),(2),(3",
	want: rows("t", 2),
}}

func TestDumpCounter(t *testing.T) {
	for _, tc := range dumpCounterCases {
		t.Run(tc.name, func(t *testing.T) {
			dump := []byte(tc.dump)
			whole := countDump(dump, nil)
			if got := whole.Tables(); !slices.Equal(got, tc.want) {
				t.Fatalf("Tables() = %v, want %v", got, tc.want)
			}
			// Every cut of the dump in two, and byte by byte.
			for i := range len(dump) {
				c := New()
				c.Write(dump[:i])
				c.Write(dump[i:])
				if diff := sameState(whole, c); diff != "" {
					t.Fatalf("cut at %d (%q|%q): %s", i, dump[max(0, i-10):i], dump[i:min(len(dump), i+10)], diff)
				}
			}
			if diff := sameState(whole, countDump(dump, fixed(1))); diff != "" {
				t.Fatalf("byte by byte: %s", diff)
			}
		})
	}
}

// TestDumpCounterTablesIsACopy checks that the caller owns what Tables
// returns, and that counting goes on after it.
func TestDumpCounterTablesIsACopy(t *testing.T) {
	c := New()
	c.Write([]byte("CREATE TABLE t (x int);\nINSERT INTO t VALUES (1);\n"))
	got := c.Tables()
	got[0].Rows = 100
	c.Write([]byte("INSERT INTO t VALUES (2);\n"))
	if want := rows("t", 2); !slices.Equal(c.Tables(), want) {
		t.Fatalf("Tables() = %v, want %v", c.Tables(), want)
	}
}

func FuzzDumpCounter(f *testing.F) {
	for _, tc := range dumpCounterCases {
		f.Add([]byte(tc.dump), []byte{1, 7, 200})
	}
	f.Fuzz(func(t *testing.T, dump, cuts []byte) {
		whole := countDump(dump, nil)
		if len(cuts) == 0 {
			cuts = []byte{1}
		}
		i := 0
		split := countDump(dump, func() int {
			n := int(cuts[i%len(cuts)])
			i++
			return n
		})
		if diff := sameState(whole, split); diff != "" {
			t.Fatalf("cut in %v: %s", cuts, diff)
		}
		for _, tr := range whole.Tables() {
			if tr.Rows < 0 {
				t.Fatalf("table %q has %d rows", tr.Name, tr.Rows)
			}
		}
	})
}

// mariadbClientArgs reach the test server: the one .ci/run expects, root
// without a password.
var mariadbClientArgs = []string{"--no-defaults", "--host=127.0.0.1", "--port=3306", "--protocol=TCP", "--user=root", "--default-character-set=utf8mb4"}

// mariadbRun runs the mariadb client on sql in database db ("" for none)
// and returns its output, tab-separated without column names.
func mariadbRun(t *testing.T, db, sql string) (string, error) {
	t.Helper()
	args := append(slices.Clone(mariadbClientArgs), "--batch", "--raw", "--skip-column-names")
	if db != "" {
		args = append(args, "--database="+db)
	}
	cmd := exec.Command("mariadb", args...)
	cmd.Stdin = strings.NewReader(sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mariadb: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func mariadbMust(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := mariadbRun(t, db, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scratchMariaDB creates an empty database with a name of its own on the
// test server, dropped when the test ends. It fails the test, naming the
// server, when the server cannot be reached: .ci/run starts it.
func scratchMariaDB(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mariadb-dump"); err != nil {
		t.Fatal("mariadb-dump is not on PATH: install mariadb-client to run the MariaDB dump tests")
	}
	if _, err := mariadbRun(t, "", "SELECT 1"); err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 (user root, no password) cannot be reached, so the dump tests cannot run: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	db := "vigil_dumpcount_" + hex.EncodeToString(b)
	mariadbMust(t, "", "CREATE DATABASE `"+db+"` CHARACTER SET utf8mb4")
	t.Cleanup(func() {
		if _, err := mariadbRun(t, "", "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			t.Errorf("drop scratch database %s: %v", db, err)
		}
	})
	return db
}

// mariadbDump dumps db as vigil does, with extra options.
func mariadbDump(t *testing.T, db string, extra ...string) []byte {
	t.Helper()
	args := append(slices.Clone(mariadbClientArgs), "--single-transaction", "--routines", "--triggers", "--events")
	args = append(append(args, extra...), "--", db)
	cmd := exec.Command("mariadb-dump", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mariadb-dump %s: %v: %s", strings.Join(extra, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// mariadbCounts counts the rows of db's base tables, the way the restore
// test will count the restored copy.
func mariadbCounts(t *testing.T, db string) map[string]int64 {
	t.Helper()
	list := mariadbMust(t, "", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '"+db+"' AND TABLE_TYPE = 'BASE TABLE'")
	counts := map[string]int64{}
	for name := range strings.Lines(list) {
		name = strings.TrimSuffix(name, "\n")
		out := mariadbMust(t, db, "SELECT COUNT(*) FROM `"+strings.ReplaceAll(name, "`", "``")+"`")
		n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatalf("count rows of %s: %q", name, out)
		}
		counts[name] = n
	}
	return counts
}

// dumpFixture fills a database with what a row counter could trip on. The
// trigger on blobs and the procedure nbe_proc are created under
// NO_BACKSLASH_ESCAPES with a lone backslash in a string: read with
// backslash escapes, their quotes would not balance.
const dumpFixture = `
CREATE TABLE strings (id INT PRIMARY KEY, s TEXT, note VARCHAR(100));
CREATE TABLE blobs (id INT PRIMARY KEY, b BLOB);
CREATE TABLE empty_table (id INT);
CREATE TABLE t (x INT);
CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(200));
CREATE TABLE ` + "`we``ird`" + ` (x INT);
CREATE TABLE ` + "`has space`" + ` (x INT, ` + "`col``q`" + ` VARCHAR(10));
CREATE TABLE big (id INT PRIMARY KEY, s VARCHAR(60));
CREATE TABLE ` + "`zz ; last`" + ` (x INT);
CREATE TABLE generated (a INT, b INT AS (a * 2) VIRTUAL);
CREATE SEQUENCE ids START WITH 100;

CREATE TRIGGER strings_log AFTER INSERT ON strings FOR EACH ROW INSERT INTO log (msg) VALUES (CONCAT('strings ', NEW.id, ' ),('));

INSERT INTO strings VALUES
 (1, '),(', 'paren comma paren'),
 (2, 'a;b;;c', 'delimiters'),
 (3, 'it''s "double" ` + "`back`" + `', 'quotes'),
 (4, 'back\\slash \\'' trailing\\', 'backslashes'),
 (5, 'line1\nline2\r\n-- not a comment\n# nor this\nDELIMITER //\n', 'newlines'),
 (6, '/* open */ close */ /*!50001 CREATE TABLE fake (x INT) */ --', 'comments'),
 (7, NULL, NULL),
 (8, 'INSERT INTO t VALUES (9),(10);', 'an insert in a string'),
 (9, '', 'empty'),
 (10, 'ünïcödé ✓ 𝄞', 'utf-8');
SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');
INSERT INTO strings VALUES (11, 'a\b\', 'written without escapes'), (12, '\''', 'NBE quote');
SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '');

INSERT INTO blobs VALUES (1, X'00275C0A'), (2, X''), (3, NULL), (4, X'5C'), (5, X'27'), (6, X'2A2F3B0D0A'), (7, X'FF00FE5C27');
INSERT INTO ` + "`we``ird`" + ` VALUES (1), (2), (3);
INSERT INTO ` + "`has space`" + ` VALUES (1, 'a'), (NULL, NULL);
INSERT INTO ` + "`zz ; last`" + ` VALUES (1);
INSERT INTO generated (a) VALUES (1), (2), (NULL);

SET SESSION max_recursive_iterations = 100000;
INSERT INTO big (id, s) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
  SELECT i, CONCAT('row ', i, ' ),(; it''s \\ "', REPEAT('x', i % 20)) FROM n;

CREATE VIEW v_strings AS SELECT id, s FROM strings WHERE s <> '),(';
CREATE ALGORITHM=MERGE VIEW ` + "`v weird``view`" + ` AS SELECT x FROM t;

SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');
CREATE TRIGGER blobs_nbe BEFORE INSERT ON blobs FOR EACH ROW SET NEW.b = CONCAT('*/;;''\', NEW.b);
DELIMITER //
CREATE PROCEDURE nbe_proc() BEGIN SELECT '\'; INSERT INTO t VALUES (5),(6); END//
DELIMITER ;
SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '');

DELIMITER //
CREATE PROCEDURE fill() BEGIN
  INSERT INTO t VALUES (1),(2);
  INSERT INTO log (msg) VALUES ('*/ from fill'); -- a comment ;; in a body
  /* INSERT INTO t VALUES (3); */
END//
CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42//
DELIMITER ;
`

// dumpFixtureEvent is created only where the server allows events.
const dumpFixtureEvent = `CREATE EVENT fill_log ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
  DO INSERT INTO log (msg) VALUES ('event ),('), ('event 2;');`

// TestDumpCounterMariaDB dumps a database of awkward content with
// mariadb-dump, in the ways vigil and its users run it, and checks the
// counter's tables and rows against the server's, fed whole and in chunks.
func TestDumpCounterMariaDB(t *testing.T) {
	db := scratchMariaDB(t)
	mariadbMust(t, db, dumpFixture)
	haveEvent := true
	if _, err := mariadbRun(t, db, dumpFixtureEvent); err != nil {
		t.Logf("no event in the dump: %v", err)
		haveEvent = false
	}
	want := mariadbCounts(t, db)
	if len(want) != 10 || want["big"] != 20000 || want["strings"] != 12 || want["log"] != 12 {
		t.Fatalf("the fixture did not come out as planned: %v", want)
	}

	variants := []struct {
		name    string
		options []string
		// contains are what the dump must hold for the variant to test
		// what it means to.
		contains []string
	}{
		{"default", []string{"--net-buffer-length=4096"}, []string{
			"DELIMITER ;;\n", "/*!50003 CREATE*/", "/*!50001 CREATE VIEW `v_strings`",
			"SET sql_mode              = 'NO_BACKSLASH_ESCAPES", "'*/;;''\\', NEW.b)", "BEGIN SELECT '\\';",
			"INSERT INTO `we``ird` VALUES", "INSERT INTO `has space` VALUES", "\\0\\'\\\\\\n",
		}},
		{"as vigil runs it", []string{"--hex-blob", "--no-tablespaces"}, []string{"0x00275C0A"}},
		{"one row per insert", []string{"--skip-extended-insert"}, nil},
		{"column names and ignore", []string{"--complete-insert", "--insert-ignore"}, []string{"INSERT IGNORE INTO `we``ird` (`x`) VALUES"}},
		{"replace", []string{"--replace"}, []string{"REPLACE INTO"}},
		{"compact", []string{"--compact", "--net-buffer-length=4096"}, nil},
		{"ansi", []string{"--compatible=ansi"}, []string{"INSERT INTO \"big\" VALUES"}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			dump := mariadbDump(t, db, v.options...)
			for _, s := range v.contains {
				if !bytes.Contains(dump, []byte(s)) {
					t.Errorf("the dump lacks %q", s)
				}
			}
			if v.name == "default" {
				if haveEvent && !bytes.Contains(dump, []byte("EVENT `fill_log`")) {
					t.Errorf("the dump lacks the event")
				}
				if n := bytes.Count(dump, []byte("INSERT INTO `big` VALUES")); n < 20 {
					t.Errorf("big is in %d INSERT statements, want many (--net-buffer-length=4096)", n)
				}
			}

			whole := countDump(dump, nil)
			got := map[string]int64{}
			for _, tr := range whole.Tables() {
				if _, dup := got[tr.Name]; dup {
					t.Errorf("table %q is listed twice", tr.Name)
				}
				got[tr.Name] = tr.Rows
			}
			for name, n := range want {
				if m, ok := got[name]; !ok {
					t.Errorf("table %q (%d rows) is missing", name, n)
				} else if m != n {
					t.Errorf("table %q: counted %d rows, the server has %d", name, m, n)
				}
			}
			for name, n := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("table %q (%d rows) is not a base table of the database", name, n)
				}
			}

			seed := mathrand.Uint64()
			rnd := mathrand.New(mathrand.NewPCG(seed, 0))
			chunkings := []struct {
				name string
				next func() int
			}{
				{"1 byte", fixed(1)},
				{"7 bytes", fixed(7)},
				{"32 KiB", fixed(32 << 10)},
				// Mostly small, sometimes large: 1 byte to 64 KiB.
				{fmt.Sprintf("random (seed %d)", seed), func() int { return 1 + rnd.IntN(1<<rnd.IntN(17)) }},
			}
			for _, ch := range chunkings {
				if diff := sameState(whole, countDump(dump, ch.next)); diff != "" {
					t.Errorf("in chunks of %s: %s", ch.name, diff)
				}
			}
		})
	}
}

// benchmarkDump builds a dump of about size bytes whose rows are like
// rows: "strings" (text, escapes, NULLs), "numbers" or "hex" (--hex-blob).
func benchmarkDump(kind string, size int) []byte {
	var b bytes.Buffer
	b.WriteString("/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n")
	b.WriteString("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n")
	rnd := mathrand.New(mathrand.NewPCG(1, 2))
	for table := 0; b.Len() < size; table++ {
		fmt.Fprintf(&b, "\n--\n-- Table structure for table `t%d`\n--\n\nDROP TABLE IF EXISTS `t%d`;\n", table, table)
		fmt.Fprintf(&b, "CREATE TABLE `t%d` (\n  `id` int(11) NOT NULL,\n  `a` varchar(255) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n", table)
		fmt.Fprintf(&b, "LOCK TABLES `t%d` WRITE;\n/*!40000 ALTER TABLE `t%d` DISABLE KEYS */;\n", table, table)
		for stmt := 0; stmt < 64 && b.Len() < size; stmt++ {
			fmt.Fprintf(&b, "INSERT INTO `t%d` VALUES\n", table)
			for row := 0; row < 200; row++ {
				if row > 0 {
					b.WriteString(",\n")
				}
				id := rnd.IntN(1 << 30)
				switch kind {
				case "strings":
					fmt.Fprintf(&b, "(%d,'Customer %d ordered \\'item\\' #%d, paid in full.\\nThank you!',NULL,'2024-01-%02d 10:00:00')", id, id, row, row%28+1)
				case "numbers":
					fmt.Fprintf(&b, "(%d,%d,-%d,%d.%d,NULL,%d)", id, row, rnd.IntN(1000), id%1000, row, stmt)
				case "hex":
					fmt.Fprintf(&b, "(%d,0x%x%x%x%x)", id, rnd.Uint64(), rnd.Uint64(), rnd.Uint64(), rnd.Uint64())
				}
			}
			b.WriteString(";\n")
		}
		fmt.Fprintf(&b, "/*!40000 ALTER TABLE `t%d` ENABLE KEYS */;\nUNLOCK TABLES;\n", table)
	}
	return b.Bytes()
}

// BenchmarkDumpCounter measures the counter's throughput (MB/s) on dumps
// fed as os/exec's pipe copy feeds it, 32 KiB at a time.
func BenchmarkDumpCounter(b *testing.B) {
	for _, kind := range []string{"strings", "numbers", "hex"} {
		b.Run(kind, func(b *testing.B) {
			dump := benchmarkDump(kind, 16<<20)
			b.SetBytes(int64(len(dump)))
			b.ReportAllocs()
			for b.Loop() {
				c := New()
				for p := dump; len(p) > 0; {
					n := min(len(p), 32<<10)
					c.Write(p[:n])
					p = p[n:]
				}
			}
		})
	}
}
