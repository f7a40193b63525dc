package luascripts

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Kruise's luamanager parses and compiles a provider script on every call, so each provider file
// is generated with only the code that provider runs and without comments or spare whitespace;
// the readable source stays in lib/. Two steps, both here:
//
//   - resolve: keep the lines between `--#if <provider>...` and `--#else` or `--#end` only for the
//     providers named (the `--#else` part for the others); blocks nest;
//   - embedChunks: replace each `--#embed NAME file` line with `local NAME=[==[...]==]`, the file
//     (itself resolved and minified) as a long string, which the script compiles when it needs it;
//   - minify: re-emit the Lua tokens without comments, separated by a space only where two tokens
//     would otherwise run together. defaultLaneHeaderLine is kept on a line of its own, as
//     WithDefaultLaneHeader expects.

var (
	directive      = regexp.MustCompile(`^\s*--#(if|else|end)\b(.*)$`)
	embedDirective = regexp.MustCompile(`(?m)^[ \t]*--#embed\b(.*)$`)
	luaName        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// embedChunks replaces each `--#embed NAME file` line of src with a local string NAME holding
// chunk(file), in a long bracket whose level the text does not close.
func embedChunks(src []byte, chunk func(file string) ([]byte, error)) ([]byte, error) {
	var failed error
	out := embedDirective.ReplaceAllFunc(src, func(line []byte) []byte {
		args := strings.Fields(string(embedDirective.FindSubmatch(line)[1]))
		if len(args) != 2 || !luaName.MatchString(args[0]) || strings.ContainsAny(args[1], "/\\") {
			failed = errors.Join(failed, fmt.Errorf("%q: want --#embed NAME file.lua (a file beside it)", bytes.TrimSpace(line)))
			return line
		}
		text, err := chunk(args[1])
		if err != nil {
			failed = errors.Join(failed, err)
			return line
		}
		text = bytes.TrimRight(text, "\n")
		// The level's closing bracket must not occur in the text, nor start at its end ("]"
		// and the level's "=" there would close the string early, on the closing "]").
		eq := ""
		for bytes.Contains(text, []byte("]"+eq+"]")) || bytes.HasSuffix(text, []byte("]"+eq)) {
			eq += "="
		}
		return []byte(fmt.Sprintf("local %s = [%s[%s]%s]", args[0], eq, text, eq))
	})
	if failed != nil {
		return nil, failed
	}
	return out, nil
}

// resolve keeps the lines of src that belong to provider.
func resolve(src []byte, provider string) ([]byte, error) {
	type block struct{ keep, taken, elseSeen bool }
	var stack []block
	keeping := func() bool {
		for _, b := range stack {
			if !b.keep {
				return false
			}
		}
		return true
	}
	var out bytes.Buffer
	for n, line := range strings.SplitAfter(string(src), "\n") {
		m := directive.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			if keeping() {
				out.WriteString(line)
			}
			continue
		}
		switch m[1] {
		case "if":
			names := strings.Fields(m[2])
			if len(names) == 0 {
				return nil, fmt.Errorf("line %d: --#if names no provider", n+1)
			}
			in := slices.Contains(names, provider)
			stack = append(stack, block{keep: in, taken: in})
		case "else":
			if len(stack) == 0 || stack[len(stack)-1].elseSeen {
				return nil, fmt.Errorf("line %d: --#else without its --#if", n+1)
			}
			top := &stack[len(stack)-1]
			top.keep, top.elseSeen = !top.taken, true
		case "end":
			if len(stack) == 0 {
				return nil, fmt.Errorf("line %d: --#end without its --#if", n+1)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("%d --#if blocks are not closed", len(stack))
	}
	return out.Bytes(), nil
}

type tokenKind int

const (
	word   tokenKind = iota // a name, a keyword or a number
	str                     // a string literal, kept as written
	symbol                  // an operator or punctuation
)

type token struct {
	kind tokenKind
	text string
}

// longBracket returns the length of the long bracket opening at s[0] ("[[", "[==[") and its
// level, or -1 when s does not open one.
func longBracket(s string) (length, level int) {
	if !strings.HasPrefix(s, "[") {
		return -1, 0
	}
	for 1+level < len(s) && s[1+level] == '=' {
		level++
	}
	if 1+level < len(s) && s[1+level] == '[' {
		return level + 2, level
	}
	return -1, 0
}

// lex splits Lua source into tokens, dropping whitespace and comments.
func lex(src string) ([]token, error) {
	var toks []token
	isWord := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "--"):
			if n, level := longBracket(src[i+2:]); n > 0 {
				end := strings.Index(src[i+2+n:], "]"+strings.Repeat("=", level)+"]")
				if end < 0 {
					return nil, fmt.Errorf("offset %d: unterminated long comment", i)
				}
				i += 2 + n + end + level + 2
				continue
			}
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			i += end
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return nil, fmt.Errorf("offset %d: unterminated string", i)
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("offset %d: unterminated string", i)
			}
			toks = append(toks, token{str, src[i : j+1]})
			i = j + 1
		case c == '[':
			if n, level := longBracket(src[i:]); n > 0 {
				end := strings.Index(src[i+n:], "]"+strings.Repeat("=", level)+"]")
				if end < 0 {
					return nil, fmt.Errorf("offset %d: unterminated long string", i)
				}
				toks = append(toks, token{str, src[i : i+n+end+level+2]})
				i += n + end + level + 2
				continue
			}
			toks = append(toks, token{symbol, "["})
			i++
		case isWord(c) || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (isWord(src[j]) || src[j] == '.' && c >= '0' && c <= '9' ||
				(src[j] == '-' || src[j] == '+') && c >= '0' && c <= '9' && (src[j-1] == 'e' || src[j-1] == 'E')) {
				j++
			}
			toks = append(toks, token{word, src[i:j]})
			i = j
		default:
			op := string(c)
			for _, long := range []string{"...", "..", "==", "~=", "<=", ">="} {
				if strings.HasPrefix(src[i:], long) {
					op = long
					break
				}
			}
			toks = append(toks, token{symbol, op})
			i += len(op)
		}
	}
	return toks, nil
}

// minify re-emits src's tokens with the fewest separators. keep, unless nil, is a line that must
// stay as it is, on a line of its own (defaultLaneHeaderLine).
func minify(src, keep []byte) ([]byte, error) {
	var before, after []byte
	if keep == nil {
		after = src
	} else {
		var found bool
		if before, after, found = bytes.Cut(src, keep); !found {
			return nil, fmt.Errorf("the source has no line %q", bytes.TrimSpace(keep))
		}
	}
	head, err := lex(string(before))
	if err != nil {
		return nil, err
	}
	tail, err := lex(string(after))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	emit := func(toks []token) {
		for i, t := range toks {
			if i > 0 && needsSpace(toks[i-1], t) {
				out.WriteByte(' ')
			}
			out.WriteString(t.text)
		}
	}
	emit(head)
	if out.Len() > 0 && keep != nil {
		out.WriteByte('\n')
	}
	out.Write(keep)
	emit(tail)
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// needsSpace says whether b must be separated from a so that the two still lex as two tokens.
func needsSpace(a, b token) bool {
	switch {
	case a.kind == word && b.kind == word:
		return true
	case a.kind == word && a.text[0] >= '0' && a.text[0] <= '9' && strings.HasPrefix(b.text, "."):
		return true
	case a.text == "-" && strings.HasPrefix(b.text, "-"):
		return true
	case a.text == "[" && (strings.HasPrefix(b.text, "[") || strings.HasPrefix(b.text, "=")):
		return true
	}
	return false
}

func TestResolve(t *testing.T) {
	src := "a\n--#if mse\nb\n  --#if higress\nc\n  --#else\nd\n  --#end\n--#else\ne\n--#end\nf\n"
	for provider, want := range map[string]string{"mse": "a\nb\nd\nf\n", "higress": "a\ne\nf\n"} {
		got, err := resolve([]byte(src), provider)
		if err != nil || string(got) != want {
			t.Errorf("resolve(%s) = %q, %v; want %q", provider, got, err, want)
		}
	}
	for _, bad := range []string{"--#if mse\n", "--#end\n", "--#else\n", "--#if mse\n--#else\n--#else\n--#end\n", "--#if\n--#end\n"} {
		if _, err := resolve([]byte(bad), "mse"); err == nil {
			t.Errorf("resolve(%q) = nil error, want an error", bad)
		}
	}
}

func TestMinify(t *testing.T) {
	keep := []byte(`local K = "k"` + "\n")
	src := "-- comment\nlocal a = 1 - -2 --[[ long\ncomment ]] .. 'x\\'y'\n" + string(keep) +
		"local t = { [ [[s]] ] = 1.5e-3 .. \"--\", a=a} --[==[ x ]] ]==]\nreturn a..t[ [==[u]==] ], 1 .. 2\n"
	want := "local a=1- -2 ..'x\\'y'\n" + string(keep) + "local t={[ [[s]]]=1.5e-3 ..\"--\",a=a}return a..t[ [==[u]==]],1 ..2\n"
	got, err := minify([]byte(src), keep)
	if err != nil || string(got) != want {
		t.Errorf("minify = %q, %v\nwant %q", got, err, want)
	}
	if _, err := minify([]byte("local a = 'x\n"+string(keep)), keep); err == nil {
		t.Error("an unterminated string: nil error, want an error")
	}
	if _, err := minify([]byte("local a = 1\n"), keep); err == nil {
		t.Error("no kept line: nil error, want an error")
	}
}

func TestEmbedChunks(t *testing.T) {
	chunks := map[string]string{"a.lua": "return 1\n", "b.lua": "return [[x]]..'y]'\n", "c.lua": "return t[1]\n"}
	read := func(file string) ([]byte, error) {
		c, ok := chunks[file]
		if !ok {
			return nil, fmt.Errorf("no %s", file)
		}
		return []byte(c), nil
	}
	src := "local x = 1\n  --#embed A a.lua\n--#embed B b.lua\n--#embed C c.lua\nreturn A, B, C\n"
	want := "local x = 1\nlocal A = [[return 1]]\nlocal B = [=[return [[x]]..'y]']=]\nlocal C = [=[return t[1]]=]\nreturn A, B, C\n"
	got, err := embedChunks([]byte(src), read)
	if err != nil || string(got) != want {
		t.Errorf("embedChunks = %q, %v\nwant %q", got, err, want)
	}
	for _, bad := range []string{"--#embed A\n", "--#embed a-b a.lua\n", "--#embed A ../a.lua\n", "--#embed A d.lua\n"} {
		if _, err := embedChunks([]byte(bad), read); err == nil {
			t.Errorf("embedChunks(%q) = nil error, want an error", bad)
		}
	}
}
