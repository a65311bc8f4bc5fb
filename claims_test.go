package introspection

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

type claimsRuleCase struct {
	desc   string
	expr   string
	answer string // JSON
	want   bool
}

// claimsRuleCases are the language's meaning, one behaviour a row.
var claimsRuleCases = []claimsRuleCase{
	// Equals
	{"Equals: a string claim", "Equals(`sub`, `alice`)", `{"sub": "alice"}`, true},
	{"Equals: another string", "Equals(`sub`, `alice`)", `{"sub": "bob"}`, false},
	{"Equals: case matters", "Equals(`sub`, `alice`)", `{"sub": "Alice"}`, false},
	{"Equals: a longer string is not equal", "Equals(`sub`, `alice`)", `{"sub": "alice2"}`, false},
	{"Equals: the empty string", "Equals(`sub`, ``)", `{"sub": ""}`, true},
	{"Equals: any item of a list", "Equals(`roles`, `admin`)", `{"roles": ["dev", "admin"]}`, true},
	{"Equals: no item of a list", "Equals(`roles`, `admin`)", `{"roles": ["dev", "administrator"]}`, false},
	{"Equals: an empty list", "Equals(`roles`, `admin`)", `{"roles": []}`, false},
	{"Equals: a list inside a list is skipped", "Equals(`roles`, `admin`)", `{"roles": [["admin"]]}`, false},
	{"Equals: objects, lists and nulls in a list are skipped, strings count", "Equals(`roles`, `admin`)", `{"roles": [{"admin": true}, null, ["admin"], "admin"]}`, true},
	{"Equals: a number in a list counts by its text", "Equals(`ids`, `7`)", `{"ids": ["a", 7, true, null]}`, true},
	{"Equals: a boolean in a list counts by its text", "Equals(`ids`, `true`)", `{"ids": ["a", 7, true, null]}`, true},
	{"Equals: a missing claim", "Equals(`sub`, `alice`)", `{}`, false},
	{"Equals: a null claim is missing, not the text null", "Equals(`sub`, `null`)", `{"sub": null}`, false},
	{"Equals: an object is not a scalar", "Equals(`sub`, `alice`)", `{"sub": {"name": "alice"}}`, false},
	{"Equals: an object's text is not compared", "Equals(`sub`, `{}`)", `{"sub": {}}`, false},

	// Numbers and booleans by their JSON text
	{"number: an integer", "Equals(`level`, `3`)", `{"level": 3}`, true},
	{"number: 3.0 is not 3", "Equals(`level`, `3`)", `{"level": 3.0}`, false},
	{"number: 1.0 is 1.0", "Equals(`level`, `1.0`)", `{"level": 1.0}`, true},
	{"number: 1.0 is not 1", "Equals(`level`, `1`)", `{"level": 1.0}`, false},
	{"number: 1e3 is not 1000", "Equals(`level`, `1000`)", `{"level": 1e3}`, false},
	{"number: beyond float64's exact integers", "Equals(`uid`, `9007199254740993`)", `{"uid": 9007199254740993}`, true},
	{"number: the string \"3\" equals 3 too", "Equals(`level`, `3`)", `{"level": "3"}`, true},
	{"boolean: true", "Equals(`email_verified`, `true`)", `{"email_verified": true}`, true},
	{"boolean: false is not true", "Equals(`email_verified`, `true`)", `{"email_verified": false}`, false},
	{"boolean: false", "Equals(`email_verified`, `false`)", `{"email_verified": false}`, true},
	{"boolean: the string \"true\" equals true too", "Equals(`email_verified`, `true`)", `{"email_verified": "true"}`, true},

	// Prefix
	{"Prefix: a string claim", "Prefix(`email`, `admin@`)", `{"email": "admin@example.com"}`, true},
	{"Prefix: not at the start", "Prefix(`email`, `admin@`)", `{"email": "x-admin@example.com"}`, false},
	{"Prefix: any item of a list", "Prefix(`groups`, `/org/`)", `{"groups": ["/other/a", "/org/b"]}`, true},
	{"Prefix: no item of a list", "Prefix(`groups`, `/org/`)", `{"groups": ["/other/a", "org/b"]}`, false},
	{"Prefix: a number by its text", "Prefix(`level`, `1`)", `{"level": 12}`, true},
	{"Prefix: the empty prefix, a present claim", "Prefix(`email`, ``)", `{"email": "x"}`, true},
	{"Prefix: the empty prefix, a missing claim", "Prefix(`email`, ``)", `{}`, false},

	// Contains
	{"Contains: a substring of a string claim", "Contains(`email`, `@example.com`)", `{"email": "a@example.com.evil"}`, true},
	{"Contains: not a substring", "Contains(`email`, `@example.com`)", `{"email": "a@example.org"}`, false},
	{"Contains: a list holds the item", "Contains(`roles`, `adm`)", `{"roles": ["x", "adm"]}`, true},
	{"Contains: a list's items are not searched for substrings", "Contains(`roles`, `adm`)", `{"roles": ["admin"]}`, false},
	{"Contains: a number by its text", "Contains(`level`, `3`)", `{"level": 13}`, true},
	{"Contains: a missing claim", "Contains(`email`, ``)", `{}`, false},

	// SplitContains
	{"SplitContains: a space-separated scope", "SplitContains(`scope`, ` `, `write`)", `{"scope": "read write"}`, true},
	{"SplitContains: a part, not a substring", "SplitContains(`scope`, ` `, `write`)", `{"scope": "read rewrite"}`, false},
	{"SplitContains: a single value", "SplitContains(`scope`, ` `, `write`)", `{"scope": "write"}`, true},
	{"SplitContains: an empty claim", "SplitContains(`scope`, ` `, `write`)", `{"scope": ""}`, false},
	{"SplitContains: an empty part between two separators", "SplitContains(`scope`, ` `, ``)", `{"scope": "a  b"}`, true},
	{"SplitContains: a separator of two bytes", "SplitContains(`path`, `::`, `b`)", `{"path": "a::b::c"}`, true},
	{"SplitContains: any item of a list, split", "SplitContains(`scopes`, `,`, `b`)", `{"scopes": ["a,c", "x,b"]}`, true},
	{"SplitContains: no item of a list, split", "SplitContains(`scopes`, `,`, `b`)", `{"scopes": ["a,c", "x b"]}`, false},
	{"SplitContains: a missing claim", "SplitContains(`scope`, ` `, `write`)", `{}`, false},

	// OneOf
	{"OneOf: the first value", "OneOf(`tenant`, `acme`, `globex`)", `{"tenant": "acme"}`, true},
	{"OneOf: the last value", "OneOf(`tenant`, `acme`, `globex`)", `{"tenant": "globex"}`, true},
	{"OneOf: none of them", "OneOf(`tenant`, `acme`, `globex`)", `{"tenant": "initech"}`, false},
	{"OneOf: any item of a list", "OneOf(`tenant`, `acme`, `globex`)", `{"tenant": ["initech", "globex"]}`, true},
	{"OneOf: a single value", "OneOf(`tenant`, `acme`)", `{"tenant": "acme"}`, true},
	{"OneOf: a number by its text", "OneOf(`level`, `1`, `2`)", `{"level": 2}`, true},
	{"OneOf: a missing claim", "OneOf(`tenant`, `acme`)", `{}`, false},

	// Keys
	{"key: a nested object", "Equals(`realm_access.roles`, `admin`)", `{"realm_access": {"roles": ["admin"]}}`, true},
	{"key: three levels", "Equals(`a.b.c`, `x`)", `{"a": {"b": {"c": "x"}}}`, true},
	{"key: a string where an object should be", "Equals(`realm_access.roles`, `admin`)", `{"realm_access": "roles"}`, false},
	{"key: a list where an object should be", "Equals(`realm_access.roles`, `admin`)", `{"realm_access": [{"roles": "admin"}]}`, false},
	{"key: a.b is nested, not the claim named a.b", "Equals(`a.b`, `x`)", `{"a.b": "x"}`, false},
	{"key: a\\.b is the claim named a.b", "Equals(`a\\.b`, `x`)", `{"a.b": "x"}`, true},
	{"key: a\\.b is not nested", "Equals(`a\\.b`, `x`)", `{"a": {"b": "x"}}`, false},
	{"key: a URL as a claim's name", "Equals(`https://example\\.com/roles`, `admin`)", `{"https://example.com/roles": ["admin"]}`, true},
	{"key: inside a claim named by a URL", "Equals(`https://example\\.com/claims.role`, `admin`)", `{"https://example.com/claims": {"role": "admin"}}`, true},
	{"key: \\\\ is a backslash", "Equals(`dom\\\\user`, `x`)", `{"dom\\user": "x"}`, true},
	{"key: \\\\. is a backslash, then a separator", "Equals(`a\\\\.b`, `x`)", `{"a\\": {"b": "x"}}`, true},
	{"key: \\\\\\. is a backslash and a dot", "Equals(`a\\\\\\.b`, `x`)", `{"a\\.b": "x"}`, true},
	{"key: not ASCII", "Equals(`名前`, `太郎`)", `{"名前": "太郎"}`, true},
	{"key: spaces are part of it", "Equals(` sub`, `x`)", `{"sub": "x", " sub": "y"}`, false},

	// Operators
	{"&& binds tighter than ||: a || (b && c)", "Equals(`x`, `1`) || Equals(`y`, `1`) && Equals(`z`, `1`)", `{"x": "1", "y": "0", "z": "0"}`, true},
	{"parentheses: (a || b) && c", "(Equals(`x`, `1`) || Equals(`y`, `1`)) && Equals(`z`, `1`)", `{"x": "1", "y": "0", "z": "0"}`, false},
	{"&& binds tighter than ||: (a && b) || c", "Equals(`x`, `1`) && Equals(`y`, `1`) || Equals(`z`, `1`)", `{"x": "0", "y": "0", "z": "1"}`, true},
	{"&&: both", "Equals(`x`, `1`) && Equals(`y`, `1`)", `{"x": "1", "y": "1"}`, true},
	{"&&: one of them", "Equals(`x`, `1`) && Equals(`y`, `1`)", `{"x": "1", "y": "0"}`, false},
	{"||: neither", "Equals(`x`, `1`) || Equals(`y`, `1`)", `{"x": "0", "y": "0"}`, false},
	{"a chain of &&", "Equals(`x`, `1`) && Equals(`y`, `1`) && Equals(`z`, `1`)", `{"x": "1", "y": "1", "z": "1"}`, true},
	{"!: false made true", "!Equals(`x`, `1`)", `{"x": "0"}`, true},
	{"!: true made false", "!Equals(`x`, `1`)", `{"x": "1"}`, false},
	{"!: a missing claim is not equal", "!Equals(`x`, `1`)", `{}`, true},
	{"!: a null claim is not equal", "!Equals(`x`, `1`)", `{"x": null}`, true},
	{"!!", "!!Equals(`x`, `1`)", `{"x": "1"}`, true},
	{"! binds tighter than &&: (!a) && b", "!Equals(`x`, `1`) && Equals(`y`, `1`)", `{"x": "1", "y": "0"}`, false},
	{"! of parentheses: !(a && b)", "!(Equals(`x`, `1`) && Equals(`y`, `1`))", `{"x": "1", "y": "0"}`, true},
	{"whitespace between tokens", "\t Equals (\n`x`\r\n,`1` ) \n&&\t!\tEquals(`y`,`1`)\n", `{"x": "1"}`, true},
	{"no whitespace at all", "Equals(`x`,`1`)||!Equals(`y`,`1`)", `{"x": "0", "y": "0"}`, true},
	{"32 levels of nesting", strings.Repeat("(", 31) + "!Equals(`x`, `1`)" + strings.Repeat(")", 31), `{"x": "0"}`, true},
}

// TestClaimsRule: each row's expression judged against its answer, read as the cache
// reads it: only the rule's keys.
func TestClaimsRule(t *testing.T) {
	for _, tc := range claimsRuleCases {
		t.Run(tc.desc, func(t *testing.T) {
			rule, err := parseClaimsRule(tc.expr)
			if err != nil || rule == nil {
				t.Fatalf("parseClaimsRule(%q) = %v, %v", tc.expr, rule, err)
			}
			values := readClaimValues(claimsAnswer(t, tc.answer), rule.keys())
			if got := rule.holds(values); got != tc.want || holdsByTree(rule, values) != tc.want {
				t.Errorf("%s on %s = %v (by the tree %v), want %v", tc.expr, tc.answer, got, holdsByTree(rule, values), tc.want)
			}
		})
	}
}

// TestClaimsRuleValues: what readClaimValues keeps of an answer.
func TestClaimsRuleValues(t *testing.T) {
	answer := claimsAnswer(t, `{"s": "x", "n": 1.50, "t": true, "f": false, "null": null, "o": {"in": "y"},
		"l": ["a", 2, false, null, {}, []], "e": [], "a.b": "dotted", "a": {"b": "nested"}}`)
	keys := []string{"s", "n", "t", "f", "null", "o", "o.in", "l", "e", `a\.b`, "a.b", "missing", "s.deeper"}
	got := fmt.Sprint(readClaimValues(answer, keys))
	want := "map[a.b:{false [nested]} a\\.b:{false [dotted]} e:{true []} f:{false [false]} l:{true [a 2 false]} " +
		"n:{false [1.50]} o.in:{false [y]} s:{false [x]} t:{false [true]}]"
	if got != want {
		t.Errorf("readClaimValues:\n got %s\nwant %s", got, want)
	}
	if values := readClaimValues(answer, []string{"missing"}); values != nil {
		t.Errorf("no key found: %v, want nil", values)
	}
	rule, _ := parseClaimsRule("!Equals(`s`, `x`)")
	if !rule.holds(nil) {
		t.Error("a nil map holds no values: !Equals holds")
	}
	var none *claimsRule
	if !none.holds(nil) || none.keys() != nil || none.String() != "" {
		t.Error("a nil rule restricts nothing, reads nothing, prints nothing")
	}
}

type claimsErrorCase struct {
	expr string
	want string
}

// claimsRuleErrorCases are malformed expressions and their exact errors.
var claimsRuleErrorCases = []claimsErrorCase{
	{"Equals(`a`, `b`) && && Equals(`c`, `d`)", `claims: unexpected "&&" at column 21`},
	{"Equals(`a`, `b`) &&", `claims: unexpected end of expression at column 20`},
	{"Equals(`a`, `b`) && ", `claims: unexpected end of expression at column 21`},
	{"Equals(`a`, `b`) ||", `claims: unexpected end of expression at column 20`},
	{"!", `claims: unexpected end of expression at column 2`},
	{"Equals", `claims: unexpected end of expression at column 7`},
	{"Equals(`a`, `b`", `claims: unexpected end of expression at column 16`},
	{"(Equals(`a`, `b`)", `claims: unexpected end of expression at column 18`},
	{"Equal(`a`, `b`)", `claims: unknown function "Equal" at column 1`},
	{"equals(`a`, `b`)", `claims: unknown function "equals" at column 1`},
	{"Equals(`a`, `b`) || ( x", `claims: unknown function "x" at column 23`},
	{"Equals(`a`, `b`, `c`)", `claims: Equals takes 2 arguments, not 3 at column 1`},
	{"Prefix(`a`)", `claims: Prefix takes 2 arguments, not 1 at column 1`},
	{"Contains()", `claims: Contains takes 2 arguments, not 0 at column 1`},
	{"!SplitContains(`scope`, ` `)", `claims: SplitContains takes 3 arguments, not 2 at column 2`},
	{"OneOf(`tenant`)", `claims: OneOf takes a key and at least one value at column 1`},
	{"OneOf()", `claims: OneOf takes a key and at least one value at column 1`},
	{"Equals(`a`, `b)", "claims: unterminated string at column 13"},
	{"Equals(`a", "claims: unterminated string at column 8"},
	{"Equals(`a..b`, `x`)", `claims: key "a..b" has an empty segment at column 8`},
	{"Equals(`.a`, `x`)", `claims: key ".a" has an empty segment at column 8`},
	{"Equals(`a.`, `x`)", `claims: key "a." has an empty segment at column 8`},
	{"Equals(`.`, `x`)", `claims: key "." has an empty segment at column 8`},
	{"Equals(``, `x`)", `claims: key is empty at column 8`},
	{"Equals(`a\\x`, `x`)", `claims: key "a\\x" has an escape other than \. and \\ at column 8`},
	{"Equals(`a\\`, `x`)", `claims: key "a\\" has an escape other than \. and \\ at column 8`},
	{"Equals(`a\\\\\\`, `x`)", `claims: key "a\\\\\\" has an escape other than \. and \\ at column 8`},
	{"SplitContains(`a`, ``, `b`)", `claims: SplitContains separator is empty at column 20`},
	{strings.Repeat("( ", 32) + "(Equals(`a`, `b`)" + strings.Repeat(")", 33), `claims: nested deeper than 32 at column 65`},
	{strings.Repeat("!", 33) + "Equals(`a`, `b`)", `claims: nested deeper than 32 at column 33`},
	{strings.Repeat("!(", 16) + "!Equals(`a`, `b`)" + strings.Repeat(")", 16), `claims: nested deeper than 32 at column 33`},
	{"Equals(`a`, `b`) x", `claims: unexpected "x" at column 18`},
	{"Equals(`a`, `b`) Equals(`a`, `b`)", `claims: unexpected "Equals" at column 18`},
	{"Equals(`a`, `b`))", `claims: unexpected ")" at column 17`},
	{"Equals `a`", "claims: unexpected \"`a`\" at column 8"},
	{"Equals(`a` `b`)", "claims: unexpected \"`b`\" at column 12"},
	{"Equals(`a`, `b`,)", `claims: unexpected ")" at column 17`},
	{"Equals(`a`, x)", `claims: unexpected "x" at column 13`},
	{"Equals(`a`, 'b')", `claims: unexpected "'" at column 13`},
	{"Equals(`a`, \"b\")", `claims: unexpected "\"" at column 13`},
	{"()", `claims: unexpected ")" at column 2`},
	{"Equals(`a`, `b`) & Equals(`a`, `b`)", `claims: unexpected "&" at column 18`},
	{"Equals(`a`, `b`) |", `claims: unexpected "|" at column 18`},
	{"Equals(`a`, `b`) == `c`", `claims: unexpected "=" at column 18`},
	{"Equals(`a`, `b`) AND Equals(`a`, `b`)", `claims: unexpected "AND" at column 18`},
	{"Equals(`a`, `b`) && 3", `claims: unexpected "3" at column 21`},
	{"Equals(`a`, `b`)\v", `claims: unexpected "\v" at column 17`},
	// Columns count runes: "ô", "名" and "前" are more than one byte each.
	{"Equals(`rôle`, `b`) &&", `claims: unexpected end of expression at column 23`},
	{"Equals(`名前`, `値`) || )", `claims: unexpected ")" at column 22`},
	{"Equals(`名前..x`, `値`)", `claims: key "名前..x" has an empty segment at column 8`},
	{"Equals(`é`, `b`) é", `claims: unexpected "é" at column 18`},
	{"Equals(`a`, `b`) \xff", `claims: unexpected "\xff" at column 18`},
	// Arguments are counted, at the function's column, before the key is read.
	{"Equals(`a..b`, `b`, `c`)", `claims: Equals takes 2 arguments, not 3 at column 1`},
}

// TestClaimsRuleErrors: malformed expressions are refused with the column of the fault.
func TestClaimsRuleErrors(t *testing.T) {
	for _, tc := range claimsRuleErrorCases {
		rule, err := parseClaimsRule(tc.expr)
		if err == nil || err.Error() != tc.want || rule != nil {
			t.Errorf("parseClaimsRule(%q) = %v, %v\nwant error %s", tc.expr, rule, err, tc.want)
		}
	}
	for _, expr := range []string{"", " ", "  ", "\t\r\n "} {
		rule, err := parseClaimsRule(expr)
		if rule != nil || err != nil {
			t.Errorf("parseClaimsRule(%q) = %v, %v, want no rule", expr, rule, err)
		}
	}
}

// TestClaimsRuleString: the canonical print, and the keys a rule reads.
func TestClaimsRuleString(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
		keys []string
	}{
		{"Equals(`a`,`b`)", "Equals(`a`, `b`)", []string{"a"}},
		{" \tOneOf( `t` ,`x`,`y` , `z`)\n", "OneOf(`t`, `x`, `y`, `z`)", []string{"t"}},
		{"SplitContains(`scope`, ` `, `write`)", "SplitContains(`scope`, ` `, `write`)", []string{"scope"}},
		{"((Equals(`a`, `1`)))", "Equals(`a`, `1`)", []string{"a"}},
		{"Equals(`a`, `1`) || Equals(`b`, `1`) && Equals(`c`, `1`)", "Equals(`a`, `1`) || Equals(`b`, `1`) && Equals(`c`, `1`)", []string{"a", "b", "c"}},
		{"(Equals(`a`, `1`) || Equals(`b`, `1`)) && Equals(`c`, `1`)", "(Equals(`a`, `1`) || Equals(`b`, `1`)) && Equals(`c`, `1`)", []string{"a", "b", "c"}},
		{"(Equals(`a`, `1`) && Equals(`b`, `1`)) || Equals(`c`, `1`)", "Equals(`a`, `1`) && Equals(`b`, `1`) || Equals(`c`, `1`)", []string{"a", "b", "c"}},
		{"Equals(`a`, `1`) && (Equals(`b`, `1`) && Equals(`c`, `1`))", "Equals(`a`, `1`) && Equals(`b`, `1`) && Equals(`c`, `1`)", []string{"a", "b", "c"}},
		{"Equals(`a`, `1`) || (Equals(`b`, `1`) || Equals(`c`, `1`))", "Equals(`a`, `1`) || Equals(`b`, `1`) || Equals(`c`, `1`)", []string{"a", "b", "c"}},
		{"!(Equals(`a`, `1`))", "!Equals(`a`, `1`)", []string{"a"}},
		{"!(!Equals(`a`, `1`))", "!!Equals(`a`, `1`)", []string{"a"}},
		{"!(Equals(`a`, `1`) && Equals(`b`, `1`))", "!(Equals(`a`, `1`) && Equals(`b`, `1`))", []string{"a", "b"}},
		{"!(Equals(`a`, `1`) || Equals(`b`, `1`))", "!(Equals(`a`, `1`) || Equals(`b`, `1`))", []string{"a", "b"}},
		{"!Equals(`a`, `1`) && !(Equals(`b`, `1`) || !Equals(`c`, `1`))", "!Equals(`a`, `1`) && !(Equals(`b`, `1`) || !Equals(`c`, `1`))", []string{"a", "b", "c"}},
		{"Equals(`b`, `1`) || Equals(`a`, `1`) && !Prefix(`b`, `x`)", "Equals(`b`, `1`) || Equals(`a`, `1`) && !Prefix(`b`, `x`)", []string{"a", "b"}},
		{"Equals(`https://example\\.com/roles`, `admin`) && Equals(`a\\\\.b`, `x`)", "Equals(`https://example\\.com/roles`, `admin`) && Equals(`a\\\\.b`, `x`)", []string{`a\\.b`, `https://example\.com/roles`}},
		{"Contains(`a.b`, ``) || Contains(`a\\.b`, `\n`)", "Contains(`a.b`, ``) || Contains(`a\\.b`, `\n`)", []string{"a.b", `a\.b`}},
	} {
		rule, err := parseClaimsRule(tc.expr)
		if err != nil {
			t.Errorf("parseClaimsRule(%q): %v", tc.expr, err)
			continue
		}
		if got := rule.String(); got != tc.want {
			t.Errorf("%q prints as\n %s\nwant %s", tc.expr, got, tc.want)
		}
		if got := rule.keys(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.keys) {
			t.Errorf("%q reads keys %q, want %q", tc.expr, got, tc.keys)
		}
	}
}

// claimsFuzzAnswers are the answers FuzzClaimsRule judges both parses of a rule on.
var claimsFuzzAnswers = []string{
	`{}`,
	`{"a": "1", "b": "1", "c": "0", "x": "1", "y": "0", "z": "1", "sub": "alice", "scope": "read write"}`,
	`{"a": ["1", 2, true], "b": {"c": "x"}, "x": null, "roles": ["admin", {}], "level": 3, "a.b": "x"}`,
	`{"a": {"b": {"c": "x"}}, "a.b": ["1", "x"], "tenant": "acme", "email_verified": true, "名前": "太郎"}`,
}

// FuzzClaimsRule: no input panics the parser; an error always names a column within the
// expression; an accepted rule prints as an expression that parses to the same print, the
// same keys and the same judgements.
func FuzzClaimsRule(f *testing.F) {
	for _, tc := range claimsRuleCases {
		f.Add(tc.expr)
	}
	for _, tc := range claimsRuleErrorCases {
		f.Add(tc.expr)
	}
	var answers []map[string]interface{}
	for _, text := range claimsFuzzAnswers {
		answers = append(answers, claimsAnswer(f, text))
	}
	column := regexp.MustCompile(`^claims: .+ at column ([0-9]+)$`)
	f.Fuzz(func(t *testing.T, expr string) {
		rule, err := parseClaimsRule(expr)
		if err != nil {
			m := column.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("%q: error %q is not of the form claims: ... at column N", expr, err)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > utf8.RuneCountInString(expr)+1 {
				t.Fatalf("%q: error %q names a column outside the expression", expr, err)
			}
			return
		}
		if rule == nil {
			if strings.Trim(expr, " \t\r\n") != "" {
				t.Fatalf("%q: no rule and no error", expr)
			}
			return
		}
		printed := rule.String()
		again, err := parseClaimsRule(printed)
		if err != nil || again == nil {
			t.Fatalf("%q prints as %q, which does not parse: %v", expr, printed, err)
		}
		if reprinted := again.String(); reprinted != printed {
			t.Fatalf("%q prints as %q, which prints as %q", expr, printed, reprinted)
		}
		keys := rule.keys()
		if fmt.Sprintf("%q", again.keys()) != fmt.Sprintf("%q", keys) {
			t.Fatalf("%q reads %q, its print %q", expr, keys, again.keys())
		}
		for i, answer := range answers {
			values := readClaimValues(answer, keys)
			if rule.holds(values) != again.holds(values) {
				t.Fatalf("%q and its print %q judge %s differently", expr, printed, claimsFuzzAnswers[i])
			}
			if rule.holds(values) != holdsByTree(rule, values) {
				t.Fatalf("%q judges %s unlike its tree", expr, claimsFuzzAnswers[i])
			}
		}
	})
}

// holdsByTree is the rule judged by walking its tree, as the language defines it: the
// reference for holds, which runs the steps on a stack.
func holdsByTree(r *claimsRule, values map[string]claimsValue) bool {
	switch r.op {
	case claimsAnd:
		for _, operand := range r.operands {
			if !holdsByTree(operand, values) {
				return false
			}
		}
		return true
	case claimsOr:
		for _, operand := range r.operands {
			if holdsByTree(operand, values) {
				return true
			}
		}
		return false
	case claimsNot:
		return !holdsByTree(r.operands[0], values)
	}
	value, found := values[r.key]
	if !found {
		return false
	}
	if r.op == "Contains" && !value.list {
		return strings.Contains(value.items[0], r.args[0])
	}
	for _, item := range value.items {
		// One expression, not a tagless "case a, b:", which yaegi v0.16.1 reads as "case a:".
		if (r.op == "Equals" || r.op == "Contains") && item == r.args[0] ||
			r.op == "Prefix" && strings.HasPrefix(item, r.args[0]) ||
			r.op == "SplitContains" && contains(strings.Split(item, r.args[0]), r.args[1]) ||
			r.op == "OneOf" && contains(r.args, item) {
			return true
		}
	}
	return false
}

// claimsAnswer decodes an answer as introspect.go does: numbers kept as their text.
func claimsAnswer(t testing.TB, text string) map[string]interface{} {
	t.Helper()
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.UseNumber()
	var answer map[string]interface{}
	if err := decoder.Decode(&answer); err != nil {
		t.Fatalf("answer %s: %v", text, err)
	}
	return answer
}
