package httpapi

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// JSON adapts a handler that takes a decoded body: the body must be exactly
// one JSON object of T's shape, else the handler is not called and the caller
// gets a 400 naming the culprit (see Decode).
func JSON[T any](fn func(ctx context.Context, r *Request, in *T) (Response, error)) HandlerFunc {
	return func(ctx context.Context, r *Request) (Response, error) {
		in, err := Decode[T](r.Body)
		if err != nil {
			return Response{}, err
		}
		return fn(ctx, r, in)
	}
}

// Decode parses body strictly into a new T. The body must be valid UTF-8
// holding exactly one JSON object and nothing after it. Members that T does
// not declare, members given twice and values of the wrong type are rejected
// with a *push.InvalidArgumentError whose Field is the JSON path of the
// culprit, such as "updates[2].foo" or "dnd.bogus"; malformed JSON has no
// field. Member names match json tags exactly, not case-insensitively as
// encoding/json would, so a misspelt member never passes silently.
func Decode[T any](body []byte) (*T, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, push.Invalid("", "request body required")
	}
	if !utf8.Valid(body) {
		return nil, push.Invalid("", "request body is not valid UTF-8")
	}
	if trimmed[0] != '{' {
		return nil, push.Invalid("", "request body must be a JSON object")
	}
	// First pass: encoding/json decodes, checking the syntax of the whole
	// body before it stores anything, so a malformed body is reported as
	// such even when it also holds an unknown member.
	var v T
	uerr := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(uerr, &se) {
		return nil, syntaxError(body)
	}
	// Second pass: members and types against T, with paths. encoding/json's
	// DisallowUnknownFields names no path, and it matches names regardless
	// of case, so the walk does this itself. It skips arrays and maps of
	// plain scalars for speed (a body may hold 100000 recipient ids); a type
	// error inside one was found by json.Unmarshal, and a precise walk then
	// names its path.
	typ := reflect.TypeOf(&v).Elem()
	if err := (walker{}).walk(&scanner{data: body}, typ, ""); err != nil {
		return nil, err
	}
	if uerr != nil {
		if err := (walker{precise: true}).walk(&scanner{data: body}, typ, ""); err != nil {
			return nil, err
		}
		return nil, decodeError(uerr)
	}
	return &v, nil
}

// syntaxError describes why body, known to be invalid JSON, is so.
func syntaxError(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	err := dec.Decode(&raw)
	if err == nil {
		return push.Invalid("", "unexpected data after the JSON object")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return push.Invalid("", "malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return push.Invalid("", "malformed JSON: unexpected end of input")
	}
	return push.Invalid("", "malformed JSON")
}

// valueError names path as the culprit of a custom unmarshaler's error.
func valueError(path string, err error) error {
	if push.IsInvalid(err) {
		if path == "" {
			return err
		}
		return push.Prefix(path, err)
	}
	return push.Invalid(path, "invalid value: %v", err)
}

func decodeError(err error) error {
	var ia *push.InvalidArgumentError
	if errors.As(err, &ia) {
		return ia
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return push.Invalid(te.Field, "must be %s", describeKind(te.Type))
	}
	return push.Invalid("", "invalid value: %v", err)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType      = reflect.TypeFor[json.Number]()
)

// implements reports whether a new *t satisfies iface, the way encoding/json
// finds unmarshalers. Interface types never do: their dynamic type decides.
func implements(t, iface reflect.Type) bool {
	if t.Kind() == reflect.Interface {
		return false
	}
	return t.Implements(iface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface))
}

// walker checks a JSON value against a Go type. A quick walker skips arrays
// and maps of plain scalars whole, leaving their element types to
// json.Unmarshal; a precise one checks every element, to name the path of an
// error that json.Unmarshal found.
type walker struct {
	precise bool
}

// walk reads the next JSON value from s and checks it against t: object
// members must be declared by t, once each, and scalars must fit t's kind.
// path is the JSON path of the value ("" at the root).
func (w walker) walk(s *scanner, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	c := s.peek()
	if c == 'n' || (!w.precise && scalarContainer(t)) {
		s.skipValue() // null leaves the Go value as it is, whatever its type
		return nil
	}
	switch {
	case implements(t, jsonUnmarshaler):
		// The type decodes itself: run it here so that its error gets a path.
		u := reflect.New(t).Interface().(json.Unmarshaler)
		if err := u.UnmarshalJSON(s.rawValue()); err != nil {
			return valueError(path, err)
		}
		return nil
	case implements(t, textUnmarshaler):
		if c != '"' {
			return kindError(s, path, "a string")
		}
		u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(s.readString())); err != nil {
			return valueError(path, err)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if c != '{' {
			return kindError(s, path, "an object")
		}
		fields, quoted := fieldsOf(t)
		return w.walkObject(s, path, func(name string) (reflect.Type, bool, bool) {
			f, ok := fields[name]
			return f, quoted[name], ok
		})
	case reflect.Map:
		if c != '{' {
			return kindError(s, path, "an object")
		}
		elem := t.Elem()
		return w.walkObject(s, path, func(string) (reflect.Type, bool, bool) { return elem, false, true })
	case reflect.Slice, reflect.Array:
		if c == '"' && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			s.skipValue() // []byte travels as base64; encoding/json checks it
			return nil
		}
		if c != '[' {
			return kindError(s, path, "an array")
		}
		s.next()
		for i := 0; s.peek() != ']'; i++ {
			if s.eof() {
				return errTruncated
			}
			if err := w.walk(s, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
			if s.peek() == ',' {
				s.next()
			}
		}
		s.next()
		return nil
	case reflect.Interface:
		s.skipValue()
		return nil
	default:
		return checkScalar(s, t, path)
	}
}

// walkObject checks the members of the object at s. member returns the type
// of a declared member and whether it is sent quoted (the ",string" option).
func (w walker) walkObject(s *scanner, path string, member func(string) (t reflect.Type, quoted, ok bool)) error {
	s.next() // '{'
	seen := map[string]bool{}
	for s.peek() != '}' {
		if s.peek() != '"' {
			return errTruncated
		}
		name := s.readString()
		s.peek()
		s.next() // ':'
		p := joinPath(path, name)
		ft, quoted, ok := member(name)
		if !ok {
			return push.Invalid(p, "unknown member")
		}
		if seen[name] {
			return push.Invalid(p, "duplicate member")
		}
		seen[name] = true
		check := w.walk
		if quoted {
			check = walkQuoted
		}
		if err := check(s, ft, p); err != nil {
			return err
		}
		if s.peek() == ',' {
			s.next()
		}
	}
	s.next() // '}'
	return nil
}

// walkQuoted checks a scalar member tagged ",string": a JSON string holding
// the JSON text of the value.
func walkQuoted(s *scanner, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch s.peek() {
	case 'n':
		s.skipValue()
		return nil
	case '"':
	default:
		return kindError(s, path, "a string")
	}
	text := s.readString()
	if !json.Valid([]byte(text)) {
		return push.Invalid(path, "must be a quoted %s", describeKind(t))
	}
	inner := &scanner{data: []byte(text)}
	if c := inner.peek(); c == '{' || c == '[' || c == 'n' {
		return push.Invalid(path, "must be a quoted %s", describeKind(t))
	}
	return checkScalar(inner, t, path)
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// checkScalar checks the scalar at s against a Go scalar kind the way
// encoding/json would decode it, but names the path when it does not fit.
func checkScalar(s *scanner, t reflect.Type, path string) error {
	c := s.peek()
	isNumber := c == '-' || (c >= '0' && c <= '9')
	if t == numberType {
		switch {
		case isNumber:
			s.skipValue()
			return nil
		case c == '"':
			if _, err := strconv.ParseFloat(s.readString(), 64); err == nil {
				return nil
			}
			return push.Invalid(path, "must be a number")
		}
		return kindError(s, path, "a number")
	}
	switch t.Kind() {
	case reflect.Bool:
		if c != 't' && c != 'f' {
			return kindError(s, path, "true or false")
		}
		s.skipValue()
		return nil
	case reflect.String:
		if c != '"' {
			return kindError(s, path, "a string")
		}
		s.skipValue()
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !isNumber {
			return kindError(s, path, "an integer")
		}
		if _, err := strconv.ParseInt(string(s.rawValue()), 10, t.Bits()); err != nil {
			return numberError(path, err, "an integer")
		}
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if !isNumber {
			return kindError(s, path, "a non-negative integer")
		}
		if _, err := strconv.ParseUint(string(s.rawValue()), 10, t.Bits()); err != nil {
			return numberError(path, err, "a non-negative integer")
		}
		return nil
	case reflect.Float32, reflect.Float64:
		if !isNumber {
			return kindError(s, path, "a number")
		}
		if _, err := strconv.ParseFloat(string(s.rawValue()), t.Bits()); err != nil {
			return push.Invalid(path, "out of range")
		}
		return nil
	}
	// Channels, funcs and the like cannot be decoded at all; json.Unmarshal
	// says so.
	s.skipValue()
	return nil
}

func numberError(path string, err error, want string) error {
	if errors.Is(err, strconv.ErrRange) {
		return push.Invalid(path, "out of range")
	}
	return push.Invalid(path, "must be %s", want)
}

// kindError reports a value of the wrong JSON kind at path.
func kindError(s *scanner, path, want string) error {
	s.skipValue()
	return push.Invalid(path, "must be %s", want)
}

func describeKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "of another type"
}

// scanner reads JSON text that encoding/json has accepted. Because the syntax is
// known to be good it only needs to find where things end, which makes
// skipping a large array of ids cheap. On a truncated input it reads zeros
// instead of running off the end, so it cannot panic.
type scanner struct {
	data []byte
	pos  int
}

// errTruncated answers input that ends inside a value. json.Unmarshal has
// ruled that out before any walk; the check only keeps a walk from looping.
var errTruncated = push.Invalid("", "malformed JSON: unexpected end of input")

// eof reports whether only white space is left.
func (s *scanner) eof() bool {
	s.peek()
	return s.pos >= len(s.data)
}

// peek skips white space and returns the next byte without consuming it.
func (s *scanner) peek() byte {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
			continue
		}
		return s.data[s.pos]
	}
	return 0
}

// next consumes one structural byte.
func (s *scanner) next() {
	s.peek()
	s.pos++
}

// skipValue consumes the next value whole.
func (s *scanner) skipValue() {
	switch s.peek() {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.pos++
			if depth == 0 {
				return
			}
		}
	default: // number or literal
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
			s.pos++
		}
	}
}

// skipString consumes a string starting at its opening quote.
func (s *scanner) skipString() {
	s.pos++
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
			continue
		case '"':
			s.pos++
			return
		}
		s.pos++
	}
}

// rawValue consumes the next value and returns its text.
func (s *scanner) rawValue() []byte {
	s.peek()
	start := s.pos
	s.skipValue()
	return s.data[start:min(s.pos, len(s.data))]
}

// readString consumes a string and returns its decoded value.
func (s *scanner) readString() string {
	raw := s.rawValue()
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var v string
	_ = json.Unmarshal(raw, &v) // valid JSON: cannot fail on a string
	return v
}

// walkCache remembers the members each struct type declares.
var walkCache sync.Map // reflect.Type → *typeInfo

type typeInfo struct {
	once   sync.Once
	fields map[string]reflect.Type
	quoted map[string]bool
}

// fieldsOf returns the JSON member names a struct type declares, following
// encoding/json's rules: the json tag's name (or the Go name), fields tagged
// "-" left out, unexported fields ignored, and the fields of untagged
// embedded structs promoted, a shallower field winning over a deeper one.
// quoted holds the scalar members tagged ",string".
func fieldsOf(t reflect.Type) (fields map[string]reflect.Type, quoted map[string]bool) {
	v, _ := walkCache.LoadOrStore(t, &typeInfo{})
	ti := v.(*typeInfo)
	ti.once.Do(func() {
		ti.fields, ti.quoted = map[string]reflect.Type{}, map[string]bool{}
		collectFields(t, 0, ti, map[string]int{}, map[reflect.Type]bool{})
	})
	return ti.fields, ti.quoted
}

func collectFields(t reflect.Type, level int, ti *typeInfo, depth map[string]int, visiting map[reflect.Type]bool) {
	if visiting[t] {
		return
	}
	visiting[t] = true
	defer delete(visiting, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				collectFields(et, level+1, ti, depth, visiting)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if d, ok := depth[name]; ok && d <= level {
			continue
		}
		depth[name] = level
		ti.fields[name] = f.Type
		delete(ti.quoted, name)
		if hasOption(opts, "string") && quotable(f.Type) {
			ti.quoted[name] = true
		}
	}
}

// quotable reports whether encoding/json honours ",string" on a field of
// type t: only strings, numbers and bools, or pointers to them.
func quotable(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return isPlainScalar(t)
}

func isPlainScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// scalarContainer reports whether t is an array, slice or map whose values
// are plain scalars: nothing in it can be an unknown member.
func scalarContainer(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return false
		}
	default:
		return false
	}
	e := t.Elem()
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	if implements(e, jsonUnmarshaler) || implements(e, textUnmarshaler) || e == numberType {
		return false
	}
	return isPlainScalar(e)
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}
