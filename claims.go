// The claims rule: Traefik Hub's `claims` expression syntax, such as
// Equals(`realm_access.roles`, `admin`) || SplitContains(`scope`, ` `, `write`), parsed
// once in New and judged against the claims of each introspection answer.
// The AST is one plain struct with an op field, not an interface per node: yaegi v0.16.1
// mishandles method calls through interfaces (#1515) and every interpreted call costs.
// Recursion is bounded by maxClaimsDepth, and chains of && or || are flat lists, so a long
// expression never recurses deeply: the interpreter's stack is precious.

package introspection

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// maxClaimsDepth bounds the nesting of parentheses and "!": each level is a few
// interpreted frames, and no rule a person writes nests deeper.
const maxClaimsDepth = 32

// The operators' ops; a function's op is its name.
const (
	claimsAnd = "&&"
	claimsOr  = "||"
	claimsNot = "!"
)

// claimsRule is a parsed claims expression.
type claimsRule struct {
	op       string        // a function's name, claimsAnd, claimsOr or claimsNot
	key      string        // a function's key, in canonical form
	args     []string      // a function's arguments after the key
	operands []*claimsRule // claimsAnd, claimsOr: two or more, none of the same op; claimsNot: one
	// The root's nodes in postfix order, for holds: one loop, no call per node (under
	// yaegi each call costs about 40 allocations, and a rule is judged on every answer).
	steps []*claimsRule
}

// claimsArity is how many arguments, the key included, a function takes; -1 for OneOf
// (a key and at least one value); 0 for a name that is not a function.
func claimsArity(name string) int {
	switch name {
	case "Equals", "Prefix", "Contains":
		return 2
	case "SplitContains":
		return 3
	case "OneOf":
		return -1
	}
	return 0
}

// claimsValue is what an answer holds at one key, reduced for the rule's functions.
// (Not claimValue: headers.go has a func of that name.)
type claimsValue struct {
	list  bool     // the claim is a JSON array
	items []string // a scalar's JSON text (string as is, number's literal, "true"/"false"), or the array's scalar items' texts
}

// parseClaimsRule parses expr; "" or whitespace only returns nil, nil (no rule).
func parseClaimsRule(expr string) (*claimsRule, error) {
	if strings.Trim(expr, claimsSpace) == "" {
		return nil, nil
	}
	p := &claimsParser{expr: expr}
	if err := p.advance(); err != nil {
		return nil, err
	}
	rule, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != claimsEnd {
		return nil, p.unexpected()
	}
	rule.steps = rule.postfix(nil)
	return rule, nil
}

// postfix appends the rule's nodes to steps, each after its operands.
func (r *claimsRule) postfix(steps []*claimsRule) []*claimsRule {
	for i := 0; i < len(r.operands); i++ {
		steps = r.operands[i].postfix(steps)
	}
	return append(steps, r)
}

// keys returns the distinct keys the rule reads, in canonical form, sorted. A nil rule
// reads none.
func (r *claimsRule) keys() []string {
	if r == nil {
		return nil
	}
	seen := make(map[string]bool)
	r.collectKeys(seen)
	keys := make([]string, 0, len(seen))
	for key := range seen {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func (r *claimsRule) collectKeys(seen map[string]bool) {
	if len(r.operands) == 0 {
		seen[r.key] = true
		return
	}
	for i := 0; i < len(r.operands); i++ {
		r.operands[i].collectKeys(seen)
	}
}

// holds evaluates the rule against the values readClaimValues returned (keyed by canonical
// key); a nil map means no values. A nil rule (no expression configured) restricts nothing.
// It runs the steps on a stack of results: a function pushes its result, "!" flips the
// top, && and || fold their operands' results into one. The functions are applied in
// place: under yaegi a call per step would cost more than the rule.
func (r *claimsRule) holds(values map[string]claimsValue) bool {
	if r == nil {
		return true
	}
	stack := make([]bool, 0, len(r.steps))
	for i := 0; i < len(r.steps); i++ {
		step := r.steps[i]
		if step.op == claimsNot {
			stack[len(stack)-1] = !stack[len(stack)-1]
		} else if step.op == claimsAnd || step.op == claimsOr {
			first := len(stack) - len(step.operands)
			result := step.op == claimsAnd
			for j := first; j < len(stack); j++ {
				if stack[j] != result {
					result = stack[j]
					break
				}
			}
			stack = append(stack[:first], result)
		} else {
			// A missing claim, a null or an object (none of them in values) is false; a
			// list holds when an item does, except for Contains on a string: a substring.
			held := false
			value, found := values[step.key]
			substring := found && step.op == "Contains" && !value.list
			if substring {
				held = strings.Contains(value.items[0], step.args[0])
			}
			for j := 0; found && !substring && !held && j < len(value.items); j++ {
				item := value.items[j]
				switch step.op {
				case "Equals", "Contains":
					held = item == step.args[0]
				case "Prefix":
					held = strings.HasPrefix(item, step.args[0])
				case "SplitContains":
					held = contains(strings.Split(item, step.args[0]), step.args[1])
				case "OneOf":
					for k := 0; k < len(step.args) && !held; k++ {
						held = item == step.args[k]
					}
				}
			}
			stack = append(stack, held)
		}
	}
	return stack[0]
}

// String prints the rule back in canonical form: parentheses only where precedence needs
// them, keys canonical. Parsing the print gives a rule that prints and judges the same.
func (r *claimsRule) String() string {
	if r == nil {
		return ""
	}
	switch r.op {
	case claimsAnd, claimsOr:
		parts := make([]string, len(r.operands))
		for i, operand := range r.operands {
			parts[i] = operand.String()
			if r.op == claimsAnd && operand.op == claimsOr {
				parts[i] = "(" + parts[i] + ")"
			}
		}
		return strings.Join(parts, " "+r.op+" ")
	case claimsNot:
		operand := r.operands[0]
		if operand.op == claimsAnd || operand.op == claimsOr {
			return "!(" + operand.String() + ")"
		}
		return "!" + operand.String()
	}
	// Arguments cannot hold a backquote, so quoting needs no escapes.
	return r.op + "(`" + r.key + "`, `" + strings.Join(r.args, "`, `") + "`)"
}

// readClaimValues looks up each canonical key in a decoded answer (json.Decoder with
// UseNumber) and returns the values found; an absent key, a null, an object or anything
// that is not a string, json.Number, bool or array is not in the map.
// It runs on every introspection answer, so all scalars share one array and no map is
// made when no key is found.
func readClaimValues(answer map[string]interface{}, keys []string) map[string]claimsValue {
	var values map[string]claimsValue
	var scalars []string
	for _, key := range keys {
		// The lookup in place, and the usual key (no escapes) split by the standard
		// library: under yaegi a call of ours per key costs more than the reading.
		var value interface{} = answer
		if strings.IndexByte(key, '\\') < 0 {
			path := strings.Split(key, ".")
			for i := 0; i < len(path) && value != nil; i++ {
				object, _ := value.(map[string]interface{})
				value = object[path[i]]
			}
		} else {
			value = lookupClaim(answer, key)
		}
		var found claimsValue
		if list, isList := value.([]interface{}); isList {
			found = claimsValue{list: true, items: claimTexts(list)}
		} else if text, ok := claimText(value); ok {
			if scalars == nil {
				scalars = make([]string, 0, len(keys))
			}
			n := len(scalars)
			scalars = append(scalars, text) // within the capacity: earlier items stay put
			found = claimsValue{items: scalars[n : n+1 : n+1]}
		} else {
			continue
		}
		if values == nil {
			values = make(map[string]claimsValue, len(keys))
		}
		values[key] = found
	}
	return values
}

// claimTexts is the texts of a list's scalar items; objects, lists and nulls are skipped.
func claimTexts(list []interface{}) []string {
	texts := make([]string, 0, len(list))
	for _, item := range list {
		if text, ok := claimText(item); ok {
			texts = append(texts, text)
		}
	}
	return texts
}

// claimText is a scalar's JSON text: a string as is, a number's literal, "true" or "false".
func claimText(value interface{}) (string, bool) {
	switch v := value.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// lookupClaim is what answer holds at a canonical key, descending into objects; nil when
// a segment is missing or an object is not there to descend into.
func lookupClaim(answer map[string]interface{}, key string) interface{} {
	var value interface{} = answer
	rest := key
	for {
		object, isObject := value.(map[string]interface{})
		if !isObject {
			return nil
		}
		segment, more, hasMore := cutClaimKey(rest)
		value = object[segment]
		if !hasMore {
			return value
		}
		rest = more
	}
}

// cutClaimKey splits a canonical key at its first unescaped ".": the first segment,
// unescaped, and the rest. A segment without escapes is a substring of the key, not a copy.
func cutClaimKey(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '\\' {
			i++ // the escaped byte is no separator
			continue
		}
		if key[i] == '.' {
			return unescapeClaimSegment(key[:i]), key[i+1:], true
		}
	}
	return unescapeClaimSegment(key), "", false
}

// unescapeClaimSegment turns `\.` into "." and `\\` into `\`.
func unescapeClaimSegment(segment string) string {
	if strings.IndexByte(segment, '\\') < 0 {
		return segment
	}
	var b strings.Builder
	for i := 0; i < len(segment); i++ {
		if segment[i] == '\\' && i+1 < len(segment) {
			i++
		}
		b.WriteByte(segment[i])
	}
	return b.String()
}

// claimKeyProblem says what is wrong with a key as written in an expression, or "".
// A key that passes is already canonical: `\.` and `\\` are its only escapes, and a dot or
// a backslash inside a segment can be written no other way.
func claimKeyProblem(key string) string {
	if key == "" {
		return "key is empty"
	}
	emptySegment := true
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '\\':
			if i+1 == len(key) || (key[i+1] != '.' && key[i+1] != '\\') {
				return fmt.Sprintf(`key %q has an escape other than \. and \\`, key)
			}
			i++
			emptySegment = false
		case '.':
			if emptySegment {
				return fmt.Sprintf("key %q has an empty segment", key)
			}
			emptySegment = true
		default:
			emptySegment = false
		}
	}
	if emptySegment {
		return fmt.Sprintf("key %q has an empty segment", key)
	}
	return ""
}

// The kinds of token.
const (
	claimsEnd    = iota // the end of the expression
	claimsName          // a function's name
	claimsString        // a back-quoted argument
	claimsPunct         // ( ) , ! && ||
)

// claimsSpace is the whitespace allowed between tokens.
const claimsSpace = " \t\r\n"

type claimsToken struct {
	kind int
	text string // as written: a string with its backquotes
	at   int    // the byte offset of its first character
}

// claimsParser is a recursive descent parser reading one token ahead. Tokens are read as
// the parser goes, so the first error in reading order is the one reported.
type claimsParser struct {
	expr string
	next int // the byte offset after tok
	tok  claimsToken
}

// parseOr reads operands joined by "||".
func (p *claimsParser) parseOr(depth int) (*claimsRule, error) {
	var operands []*claimsRule
	for {
		operand, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		operands = appendClaimsOperand(operands, claimsOr, operand)
		if !p.is(claimsOr) {
			return joinClaimsRules(claimsOr, operands), nil
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
}

// parseAnd reads operands joined by "&&", which binds tighter than "||".
func (p *claimsParser) parseAnd(depth int) (*claimsRule, error) {
	var operands []*claimsRule
	for {
		operand, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		operands = appendClaimsOperand(operands, claimsAnd, operand)
		if !p.is(claimsAnd) {
			return joinClaimsRules(claimsAnd, operands), nil
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
}

// parseUnary reads a negation, a parenthesised expression or a function call.
func (p *claimsParser) parseUnary(depth int) (*claimsRule, error) {
	if p.is(claimsNot) || p.is("(") {
		if depth == maxClaimsDepth {
			return nil, p.errorAt(p.tok.at, "nested deeper than %d", maxClaimsDepth)
		}
	}
	if p.is(claimsNot) {
		if err := p.advance(); err != nil {
			return nil, err
		}
		operand, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &claimsRule{op: claimsNot, operands: []*claimsRule{operand}}, nil
	}
	if p.is("(") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		rule, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.is(")") {
			return nil, p.unexpected()
		}
		return rule, p.advance()
	}
	if p.tok.kind == claimsName {
		return p.parseCall()
	}
	return nil, p.unexpected()
}

// parseCall reads Name(`key`, `arg`, ...) and checks the arguments.
func (p *claimsParser) parseCall() (*claimsRule, error) {
	name := p.tok
	arity := claimsArity(name.text)
	if arity == 0 {
		return nil, p.errorAt(name.at, "unknown function %q", name.text)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if !p.is("(") {
		return nil, p.unexpected()
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var args []claimsToken
	for !p.is(")") {
		if len(args) > 0 {
			if !p.is(",") {
				return nil, p.unexpected()
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if p.tok.kind != claimsString {
			return nil, p.unexpected()
		}
		args = append(args, p.tok)
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if arity < 0 && len(args) < 2 {
		return nil, p.errorAt(name.at, "%s takes a key and at least one value", name.text)
	}
	if arity > 0 && len(args) != arity {
		return nil, p.errorAt(name.at, "%s takes %d arguments, not %d", name.text, arity, len(args))
	}
	rule := &claimsRule{op: name.text, key: claimsArgument(args[0])}
	if problem := claimKeyProblem(rule.key); problem != "" {
		return nil, p.errorAt(args[0].at, "%s", problem)
	}
	for i := 1; i < len(args); i++ {
		rule.args = append(rule.args, claimsArgument(args[i]))
	}
	if name.text == "SplitContains" && rule.args[0] == "" {
		return nil, p.errorAt(args[1].at, "SplitContains separator is empty")
	}
	return rule, nil
}

// claimsArgument is a string token's text without its backquotes.
func claimsArgument(tok claimsToken) string {
	return tok.text[1 : len(tok.text)-1]
}

// appendClaimsOperand appends an operand of op, splicing in the operands of one that is
// already op (from parentheses), so that a chain is one flat list.
func appendClaimsOperand(operands []*claimsRule, op string, operand *claimsRule) []*claimsRule {
	if operand.op == op {
		// A loop, not append(operands, operand.operands...): yaegi v0.16.1 types a
		// recursive struct's field as a dummy when another file names the struct first.
		for i := 0; i < len(operand.operands); i++ {
			operands = append(operands, operand.operands[i])
		}
		return operands
	}
	return append(operands, operand)
}

// joinClaimsRules is the operands joined by op; a single operand stands alone.
func joinClaimsRules(op string, operands []*claimsRule) *claimsRule {
	if len(operands) == 1 {
		return operands[0]
	}
	return &claimsRule{op: op, operands: operands}
}

// is reports whether the current token is the operator or punctuation op.
func (p *claimsParser) is(op string) bool {
	return p.tok.kind == claimsPunct && p.tok.text == op
}

// advance reads the next token into tok.
func (p *claimsParser) advance() error {
	for p.next < len(p.expr) && strings.IndexByte(claimsSpace, p.expr[p.next]) >= 0 {
		p.next++
	}
	at := p.next
	if at == len(p.expr) {
		p.tok = claimsToken{kind: claimsEnd, at: at}
		return nil
	}
	end, kind := at+1, claimsPunct
	switch c := p.expr[at]; {
	case c == '(' || c == ')' || c == ',' || c == '!':
	case c == '&' || c == '|':
		if at+1 == len(p.expr) || p.expr[at+1] != c {
			return p.errorAt(at, "unexpected %q", p.expr[at:at+1])
		}
		end = at + 2
	case c == '`':
		closing := strings.IndexByte(p.expr[at+1:], '`')
		if closing < 0 {
			return p.errorAt(at, "unterminated string")
		}
		end = at + 1 + closing + 1
		kind = claimsString
	case isClaimsNameByte(c, false):
		for end < len(p.expr) && isClaimsNameByte(p.expr[end], true) {
			end++
		}
		kind = claimsName
	default:
		_, size := utf8.DecodeRuneInString(p.expr[at:])
		return p.errorAt(at, "unexpected %q", p.expr[at:at+size])
	}
	p.tok = claimsToken{kind: kind, text: p.expr[at:end], at: at}
	p.next = end
	return nil
}

// isClaimsNameByte reports whether c may be in a function's name (ASCII letters, "_" and,
// but first, digits).
func isClaimsNameByte(c byte, digits bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (digits && c >= '0' && c <= '9')
}

// unexpected is the error for the current token where it cannot be.
func (p *claimsParser) unexpected() error {
	if p.tok.kind == claimsEnd {
		return p.errorAt(p.tok.at, "unexpected end of expression")
	}
	return p.errorAt(p.tok.at, "unexpected %q", p.tok.text)
}

// errorAt is a parse error at byte offset at, shown as the 1-based column in runes.
func (p *claimsParser) errorAt(at int, format string, args ...interface{}) error {
	column := utf8.RuneCountInString(p.expr[:at]) + 1
	return fmt.Errorf("claims: %s at column %d", fmt.Sprintf(format, args...), column)
}
