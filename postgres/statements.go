package postgres

import "strings"

// statements splits a migration file into its statements, each sent on its
// own. Citus forwards a DDL statement on a distributed table (CREATE INDEX
// on users, say) to the workers as the text of the whole query it came in,
// as a prepared statement; a migration sent as one multi-statement query
// is then refused ("cannot insert multiple commands into a prepared
// statement"). It knows what the migrations use: -- comments, '…'
// strings and $$ or $tag$ bodies; a statement ends at a semicolon outside
// them. Comments and blank text between statements are dropped.
func statements(sql string) []string {
	var out []string
	start := 0
	flush := func(end int) {
		if s := strings.TrimSpace(sql[start:end]); s != "" && !onlyComments(s) {
			out = append(out, s)
		}
		start = end + 1
	}
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(sql)
			}
		case c == '\'':
			for i++; i < len(sql); i++ {
				if sql[i] == '\'' {
					if i+1 < len(sql) && sql[i+1] == '\'' {
						i++ // '' inside a string
						continue
					}
					break
				}
			}
		case c == '$':
			j := strings.IndexByte(sql[i+1:], '$')
			if j < 0 || !isTag(sql[i+1:i+1+j]) {
				continue // a parameter or an identifier's $, not a quote
			}
			tag := sql[i : i+j+2]
			if k := strings.Index(sql[i+len(tag):], tag); k >= 0 {
				i += len(tag) + k + len(tag) - 1
			} else {
				i = len(sql)
			}
		case c == ';':
			flush(i)
		}
	}
	if start < len(sql) {
		flush(len(sql))
	}
	return out
}

// isTag reports whether s may be a dollar quote's tag (empty for $$).
func isTag(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// onlyComments reports whether s holds nothing but -- comments.
func onlyComments(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
			return false
		}
	}
	return true
}
