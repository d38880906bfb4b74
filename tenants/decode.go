package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// SyntaxError is malformed JSON, located by line and column (1-based; the
// column counts bytes) because a byte offset is useless in an editor.
type SyntaxError struct {
	Line, Column int
	Err          *json.SyntaxError
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Err.Error())
}

func (e *SyntaxError) Unwrap() error { return e.Err }

func checkSyntax(data []byte) error {
	var raw json.RawMessage
	err := json.Unmarshal(data, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, se.Offset)
		return &SyntaxError{Line: line, Column: col, Err: se}
	}
	return err
}

// position turns json's offset, which counts the offending byte as read, into
// the line and column of that byte.
func position(data []byte, offset int64) (line, col int) {
	i := int(offset) - 1
	i = max(0, min(i, len(data)))
	before := data[:i]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = i - bytes.LastIndexByte(before, '\n')
	return line, col
}

// checkShape walks the document against the Go type it will be decoded into
// and reports, with JSON paths, every unknown or duplicate field and every
// value of the wrong JSON type. encoding/json cannot do this: it stops at the
// first unknown field without saying where it is, matches field names
// case-insensitively and lets a duplicate key silently win.
func checkShape(data []byte, t reflect.Type) []Problem {
	var c shapeChecker
	c.check("", data, t)
	return c.problems
}

type shapeChecker struct{ problems []Problem }

func (c *shapeChecker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (c *shapeChecker) check(path string, raw []byte, t reflect.Type) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return // encoding/json leaves the zero value; validation decides if that's fine
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// Run the type's own decoder now so its message gets a path.
		u := reflect.New(t).Interface().(json.Unmarshaler)
		if err := u.UnmarshalJSON(raw); err != nil {
			c.add(path, "%s", err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.check(path, raw, t.Elem())
	case reflect.Struct:
		c.object(path, raw, t)
	case reflect.Map:
		if raw[0] != '{' {
			c.add(path, "must be an object, got %s", kindOf(raw))
			return
		}
		seen := make(map[string]bool)
		eachMember(raw, func(key string, val []byte) {
			if seen[key] {
				c.add(path, "duplicate key %q", key)
				return
			}
			seen[key] = true
			c.check(join(path, key), val, t.Elem())
		})
	case reflect.Slice:
		if raw[0] != '[' {
			c.add(path, "must be an array, got %s", kindOf(raw))
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		_, _ = dec.Token()
		for i := 0; dec.More(); i++ {
			var val json.RawMessage
			if dec.Decode(&val) != nil {
				return // unreachable: the syntax was checked first
			}
			c.check(fmt.Sprintf("%s[%d]", path, i), val, t.Elem())
		}
	case reflect.String:
		if raw[0] != '"' {
			c.add(path, "must be a string, got %s", kindOf(raw))
		}
	case reflect.Bool:
		if raw[0] != 't' && raw[0] != 'f' {
			c.add(path, "must be true or false, got %s", kindOf(raw))
		}
	case reflect.Int, reflect.Int64:
		if kindOf(raw) != "number" {
			c.add(path, "must be an integer, got %s", kindOf(raw))
		} else if _, err := strconv.ParseInt(string(raw), 10, t.Bits()); err != nil {
			// 1.5, 1e3, or beyond the type's range.
			c.add(path, "must be an integer, got %s", raw)
		}
	case reflect.Float64:
		if kindOf(raw) != "number" {
			c.add(path, "must be a number, got %s", kindOf(raw))
		}
	default:
		// No field of the schema has another kind; should one appear, the
		// final strict decode still refuses a wrong type, just without a
		// path.
	}
}

func (c *shapeChecker) object(path string, raw []byte, t reflect.Type) {
	if raw[0] != '{' {
		what := "must be an object"
		if path == "" {
			what = "the configuration must be a JSON object"
		}
		c.add(path, "%s, got %s", what, kindOf(raw))
		return
	}
	fields := jsonFields(t)
	seen := make(map[string]bool)
	eachMember(raw, func(key string, val []byte) {
		if seen[key] {
			c.add(path, "duplicate field %q", key)
			return
		}
		seen[key] = true
		ft, ok := fields[key]
		if !ok {
			c.add(path, "unknown field %q%s", key, suggest(key, fields))
			return
		}
		c.check(join(path, key), val, ft)
	})
}

// eachMember calls fn for every member of a JSON object, in document order.
func eachMember(raw []byte, fn func(key string, val []byte)) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	_, _ = dec.Token()
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		var val json.RawMessage
		if err != nil || !ok || dec.Decode(&val) != nil {
			return // unreachable: the syntax was checked first
		}
		fn(key, val)
	}
}

// jsonFields maps each JSON key of a struct to its field type. Our types have
// no embedded structs, so encoding/json's inlining is not reproduced.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			maps.Copy(fields, jsonFields(f.Type)) // its fields are the object's own
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// suggest names the field an unknown key was probably meant to be when it
// differs only in case or in "-"/"_" ("resourceName", "Resource-Name").
func suggest(key string, fields map[string]reflect.Type) string {
	fold := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	// The nearest known field by edit distance, if near enough to be a
	// typo (at most one edit in three characters) and not a tie.
	best, bestDist, tie := "", len(key)/3+1, false
	for name := range fields {
		d := editDistance(fold(key), fold(name))
		switch {
		case d < bestDist:
			best, bestDist, tie = name, d, false
		case d == bestDist && best != "":
			tie = true
		}
	}
	if best == "" || tie {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the edit distance of two short strings, counting a
// swap of two neighbouring characters as one edit, as typing makes it
// (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func kindOf(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// join appends a member to a JSON path, quoting keys that are not plain
// identifiers so the path stays unambiguous.
func join(path, key string) string {
	if !identifier.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// tenantIDs extracts each tenant's id as written, best effort, so that shape
// problems can name the tenant even when its entry does not decode.
func tenantIDs(data []byte) []string {
	var doc struct {
		Tenants []json.RawMessage `json:"tenants"`
	}
	_ = json.Unmarshal(data, &doc)
	ids := make([]string, len(doc.Tenants))
	for i, raw := range doc.Tenants {
		var t struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &t)
		ids[i] = t.ID
	}
	return ids
}

func labelTenants(probs []Problem, ids []string) {
	for i := range probs {
		if n, _, ok := splitTenantPath(probs[i].Path); ok && n < len(ids) {
			probs[i].Tenant = ids[n]
		}
	}
}

// splitTenantPath splits "tenants[3].provider" into 3 and ".provider".
func splitTenantPath(path string) (index int, rest string, ok bool) {
	after, found := strings.CutPrefix(path, "tenants[")
	if !found {
		return 0, "", false
	}
	num, rest, found := strings.Cut(after, "]")
	if !found {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", false
	}
	return n, rest, true
}
