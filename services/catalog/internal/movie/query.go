package movie

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.einride.tech/aip/filtering"
	"go.einride.tech/aip/ordering"
	expr "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
)

// Document fields that listing uses. The store maps them to its own names
// one-to-one; they are part of the plan so the supported-query table can be
// checked against the index list without a database.
const (
	FieldID           = "_id"
	FieldGenres       = "genres"
	FieldDirectorID   = "directors.id"
	FieldDirectorName = "directors.name"
	FieldYear         = "year"
	FieldIMDbScore    = "imdb_score"
	FieldPopularity   = "popularity"
	FieldTitleKey     = "title_lower"
	FieldUpdateTime   = "update_time"
)

// filterFields maps AIP-160 filter names to document fields.
var filterFields = map[string]string{
	"genres":         FieldGenres,
	"directors.id":   FieldDirectorID,
	"directors.name": FieldDirectorName,
	"year":           FieldYear,
	"imdbScore":      FieldIMDbScore,
	"popularity":     FieldPopularity,
	"title":          FieldTitleKey,
}

// orderFields maps AIP-132 order names to document fields.
var orderFields = map[string]string{
	"imdbScore":  FieldIMDbScore,
	"popularity": FieldPopularity,
	"year":       FieldYear,
	"title":      FieldTitleKey,
	"updateTime": FieldUpdateTime,
	"id":         FieldID,
}

// IndexSpec is one index of the movies collection: its keys in order, all
// ascending; _id is always the last key (the keyset tie-breaker).
type IndexSpec struct {
	Name string
	Keys []string
}

// MovieIndexes lists every secondary index of the movies collection. The
// planner accepts a query only when one of them (or _id's own) serves it,
// and bootstrap creates exactly these.
var MovieIndexes = []IndexSpec{
	{"imdb_score_id", []string{FieldIMDbScore, FieldID}},
	{"popularity_id", []string{FieldPopularity, FieldID}},
	{"year_id", []string{FieldYear, FieldID}},
	{"title_lower_id", []string{FieldTitleKey, FieldID}},
	// Also the change feed's index: (update_time, _id) is its order.
	{"update_time_id", []string{FieldUpdateTime, FieldID}},
	{"genres_id", []string{FieldGenres, FieldID}},
	{"genres_imdb_score_id", []string{FieldGenres, FieldIMDbScore, FieldID}},
	{"genres_popularity_id", []string{FieldGenres, FieldPopularity, FieldID}},
	{"genres_year_id", []string{FieldGenres, FieldYear, FieldID}},
	{"genres_title_lower_id", []string{FieldGenres, FieldTitleKey, FieldID}},
	// Also the rename fan-out's index.
	{"directors_id_id", []string{FieldDirectorID, FieldID}},
	{"directors_id_year_id", []string{FieldDirectorID, FieldYear, FieldID}},
	{"directors_name_id", []string{FieldDirectorName, FieldID}},
	{"directors_name_year_id", []string{FieldDirectorName, FieldYear, FieldID}},
}

// ValueKind is the type of a typed filter or cursor value.
type ValueKind int

// Value kinds.
const (
	KindNull ValueKind = iota
	KindInt
	KindFloat
	KindString
	KindTime
)

// Value is a typed value from a filter or a cursor: user input never becomes
// anything else.
type Value struct {
	Kind ValueKind
	Int  int64
	Flt  float64
	Str  string
	Time time.Time
}

func (v Value) String() string {
	switch v.Kind {
	case KindInt:
		return fmt.Sprintf("i%d", v.Int)
	case KindFloat:
		return fmt.Sprintf("f%v", v.Flt)
	case KindString:
		return fmt.Sprintf("s%q", v.Str)
	case KindTime:
		return fmt.Sprintf("t%d", v.Time.UnixMilli())
	}
	return "null"
}

// Bound is one end of a range.
type Bound struct {
	Value     Value
	Inclusive bool
}

// Query is a planned ListMovies query: at most one equality on the index's
// leading field, an optional range on the sort field, the order, and the
// keyset cursor. Every Query that PlanQuery returns is served by one index.
type Query struct {
	EqField string // "" when none
	EqValue Value
	Lower   *Bound // on SortField
	Upper   *Bound
	// SortField is the document field to order by (FieldID for the default
	// order); ties are broken by _id in the same direction.
	SortField string
	Desc      bool
	After     *Cursor
	Limit     int
}

// Cursor is the keyset position after the last movie of a page.
type Cursor struct {
	Value Value // the sort field's value (KindNull when missing)
	ID    string
}

// Key returns a canonical description of the query's filter and order, which
// page tokens are bound to.
func (q *Query) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sort=%s desc=%t", q.SortField, q.Desc)
	if q.EqField != "" {
		fmt.Fprintf(&b, " eq=%s:%s", q.EqField, q.EqValue)
	}
	if q.Lower != nil {
		fmt.Fprintf(&b, " lo=%s:%t", q.Lower.Value, q.Lower.Inclusive)
	}
	if q.Upper != nil {
		fmt.Fprintf(&b, " hi=%s:%t", q.Upper.Value, q.Upper.Inclusive)
	}
	return b.String()
}

// SortValue returns m's value of the sort field, KindNull when unset.
func SortValue(m *Movie, field string) Value {
	switch field {
	case FieldIMDbScore:
		if m.IMDbScore != nil {
			return Value{Kind: KindFloat, Flt: *m.IMDbScore}
		}
	case FieldPopularity:
		if m.Popularity != nil {
			return Value{Kind: KindFloat, Flt: *m.Popularity}
		}
	case FieldYear:
		if m.Year != nil {
			return Value{Kind: KindInt, Int: int64(*m.Year)}
		}
	case FieldTitleKey:
		return Value{Kind: KindString, Str: TitleKey(m.Title)}
	case FieldUpdateTime:
		return Value{Kind: KindTime, Time: m.UpdateTime}
	case FieldID:
		return Value{Kind: KindString, Str: m.ID}
	}
	return Value{}
}

// TitleKey is the case-insensitive form of a title that ordering and title
// filters use.
func TitleKey(title string) string { return strings.ToLower(title) }

// filterDeclarations declares the filterable fields and their types.
func filterDeclarations() (*filtering.Declarations, error) {
	listString := filtering.TypeList(filtering.TypeString)
	return filtering.NewDeclarations(
		filtering.DeclareStandardFunctions(),
		// `genres = "Drama"` reads as naturally as `genres:"Drama"`.
		filtering.DeclareFunction(filtering.FunctionEquals,
			filtering.NewFunctionOverload("=_list_string_string", filtering.TypeBool, listString, filtering.TypeString)),
		filtering.DeclareIdent("genres", listString),
		filtering.DeclareIdent("directors.id", filtering.TypeString),
		filtering.DeclareIdent("directors.name", filtering.TypeString),
		filtering.DeclareIdent("year", filtering.TypeInt),
		filtering.DeclareIdent("imdbScore", filtering.TypeFloat),
		filtering.DeclareIdent("popularity", filtering.TypeFloat),
		filtering.DeclareIdent("title", filtering.TypeString),
	)
}

// Planner turns ListMovies requests into index-served queries.
type Planner struct {
	decls *filtering.Declarations
}

// NewPlanner builds a Planner.
func NewPlanner() (*Planner, error) {
	d, err := filterDeclarations()
	if err != nil {
		return nil, fmt.Errorf("declaring filter fields: %w", err)
	}
	return &Planner{decls: d}, nil
}

type term struct {
	field string // document field
	op    string // "=", "<", "<=", ">", ">=", "prefix"
	value Value
}

// Plan parses filter and orderBy and returns the query they describe, or an
// InvalidError: reason INVALID_ARGUMENT for malformed input, UNSUPPORTED_QUERY
// for a valid query that no index serves.
func (p *Planner) Plan(filter, orderBy string) (*Query, error) {
	if len(filter) > maxFilterChars {
		return nil, invalid("filter", fmt.Sprintf("must be at most %d characters", maxFilterChars))
	}
	if len(orderBy) > maxOrderByChars {
		return nil, invalid("orderBy", fmt.Sprintf("must be at most %d characters", maxOrderByChars))
	}
	q := &Query{SortField: FieldID}
	if err := planOrder(q, orderBy); err != nil {
		return nil, err
	}
	terms, err := p.parseFilter(filter)
	if err != nil {
		return nil, err
	}
	if err := planTerms(q, terms); err != nil {
		return nil, err
	}
	if !served(q) {
		return nil, unsupported(fmt.Sprintf("no index serves this filter with this order (%s)", describe(q)))
	}
	return q, nil
}

func planOrder(q *Query, orderBy string) error {
	var ob ordering.OrderBy
	if err := ob.UnmarshalString(orderBy); err != nil {
		return &InvalidError{Reason: ReasonInvalidOrderBy, Message: "invalid order_by",
			Violations: []FieldViolation{{Field: "orderBy", Description: err.Error()}}}
	}
	for i, f := range ob.Fields {
		field, ok := orderFields[f.Path]
		if !ok {
			return &InvalidError{Reason: ReasonInvalidOrderBy, Message: "invalid order_by",
				Violations: []FieldViolation{{Field: "orderBy", Description: fmt.Sprintf(
					"cannot order by %q: sortable fields are imdbScore, popularity, year, title, updateTime and id", f.Path)}}}
		}
		switch {
		case i == 0:
			q.SortField, q.Desc = field, f.Desc
		case i == 1 && field == FieldID && q.SortField != FieldID:
			if f.Desc != q.Desc {
				return unsupported("the id tie-breaker must go in the same direction as the field before it")
			}
		default:
			return unsupported("the catalogue orders by one field (and id); order by several fields through search")
		}
	}
	return nil
}

func (p *Planner) parseFilter(filter string) ([]term, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	f, err := filtering.ParseFilterString(filter, p.decls)
	if err != nil {
		return nil, &InvalidError{Reason: ReasonInvalidFilter, Message: "invalid filter",
			Violations: []FieldViolation{{Field: "filter", Description: err.Error()}}}
	}
	var terms []term
	if err := collectTerms(f.CheckedExpr.GetExpr(), &terms); err != nil {
		return nil, err
	}
	return terms, nil
}

// collectTerms flattens a conjunction into its comparisons.
func collectTerms(e *expr.Expr, out *[]term) error {
	call := e.GetCallExpr()
	if call == nil {
		return unsupported("a filter must be a conjunction of comparisons")
	}
	switch fn := call.GetFunction(); fn {
	case filtering.FunctionAnd, filtering.FunctionFuzzyAnd:
		for _, a := range call.GetArgs() {
			if err := collectTerms(a, out); err != nil {
				return err
			}
		}
		return nil
	case filtering.FunctionOr:
		return unsupported("OR is not supported by the catalogue's indexes")
	case filtering.FunctionNot:
		return unsupported("NOT is not supported by the catalogue's indexes")
	case filtering.FunctionNotEquals:
		return unsupported("!= is not supported by the catalogue's indexes")
	case filtering.FunctionEquals, filtering.FunctionHas, filtering.FunctionLessThan, filtering.FunctionLessEquals,
		filtering.FunctionGreaterThan, filtering.FunctionGreaterEquals:
		args := call.GetArgs()
		if len(args) != 2 {
			return unsupported(fmt.Sprintf("%s takes a field and a value", fn))
		}
		name, ok := qualifiedName(args[0])
		if !ok {
			return unsupported("a comparison must have a field on the left")
		}
		c := args[1].GetConstExpr()
		if c == nil {
			return unsupported("a comparison must have a literal value on the right")
		}
		return addTerm(out, name, fn, c)
	default:
		return unsupported(fmt.Sprintf("the function %q is not supported", fn))
	}
}

func qualifiedName(e *expr.Expr) (string, bool) {
	switch k := e.GetExprKind().(type) {
	case *expr.Expr_IdentExpr:
		return k.IdentExpr.GetName(), true
	case *expr.Expr_SelectExpr:
		parent, ok := qualifiedName(k.SelectExpr.GetOperand())
		if !ok {
			return "", false
		}
		return parent + "." + k.SelectExpr.GetField(), true
	}
	return "", false
}

func addTerm(out *[]term, name, fn string, c *expr.Constant) error {
	field, ok := filterFields[name]
	if !ok {
		return &InvalidError{Reason: ReasonInvalidFilter, Message: "invalid filter",
			Violations: []FieldViolation{{Field: "filter", Description: fmt.Sprintf("%q is not filterable", name)}}}
	}
	t := term{field: field, op: fn}
	switch field {
	case FieldGenres, FieldDirectorID, FieldDirectorName, FieldTitleKey:
		s := c.GetStringValue()
		switch {
		case field == FieldTitleKey && fn != filtering.FunctionEquals:
			return unsupported("title supports only = (exact, or a prefix ending with *)")
		case fn != filtering.FunctionEquals && fn != filtering.FunctionHas:
			return unsupported(fmt.Sprintf("%s supports only = and :", name))
		}
		t.op = "="
		switch field {
		case FieldGenres:
			s = CanonicalGenre(s)
		case FieldDirectorName:
			s = strings.TrimSpace(s)
		case FieldTitleKey:
			s = TitleKey(strings.TrimSpace(s))
			if strings.HasPrefix(s, "*") {
				return unsupported("a title filter may end with * (prefix) but not start with it")
			}
			if strings.HasSuffix(s, "*") {
				t.op = "prefix"
				s = strings.TrimSuffix(s, "*")
			}
		}
		t.value = Value{Kind: KindString, Str: s}
	case FieldYear:
		if fn == filtering.FunctionHas {
			return unsupported(": applies to genres and directors")
		}
		t.value = Value{Kind: KindInt, Int: c.GetInt64Value()}
	case FieldIMDbScore, FieldPopularity:
		if fn == filtering.FunctionHas {
			return unsupported(": applies to genres and directors")
		}
		switch k := c.GetConstantKind().(type) {
		case *expr.Constant_Int64Value:
			t.value = Value{Kind: KindFloat, Flt: float64(k.Int64Value)}
		default:
			t.value = Value{Kind: KindFloat, Flt: c.GetDoubleValue()}
		}
	}
	*out = append(*out, t)
	return nil
}

func planTerms(q *Query, terms []term) error {
	for _, t := range terms {
		if t.field == q.SortField && q.SortField != FieldID {
			if err := narrow(q, t); err != nil {
				return err
			}
			continue
		}
		if t.op != "=" {
			if t.op == "prefix" {
				return unsupported("a title prefix needs order_by title")
			}
			return unsupported(fmt.Sprintf("a range on %s needs order_by on that field", publicName(t.field)))
		}
		if q.EqField != "" && (q.EqField != t.field || compare(q.EqValue, t.value) != 0) {
			return unsupported("the catalogue filters on one equality (genres, a director, year, imdbScore, popularity or title) at a time")
		}
		q.EqField, q.EqValue = t.field, t.value
	}
	return nil
}

// narrow intersects q's range on the sort field with t.
func narrow(q *Query, t term) error {
	lo := func(b Bound) {
		if q.Lower == nil || compare(b.Value, q.Lower.Value) > 0 || (compare(b.Value, q.Lower.Value) == 0 && !b.Inclusive) {
			q.Lower = &b
		}
	}
	hi := func(b Bound) {
		if q.Upper == nil || compare(b.Value, q.Upper.Value) < 0 || (compare(b.Value, q.Upper.Value) == 0 && !b.Inclusive) {
			q.Upper = &b
		}
	}
	switch t.op {
	case "=":
		lo(Bound{t.value, true})
		hi(Bound{t.value, true})
	case "prefix":
		lo(Bound{t.value, true})
		hi(Bound{Value{Kind: KindString, Str: t.value.Str + string(rune(0x10FFFF))}, false})
	case filtering.FunctionGreaterThan:
		lo(Bound{t.value, false})
	case filtering.FunctionGreaterEquals:
		lo(Bound{t.value, true})
	case filtering.FunctionLessThan:
		hi(Bound{t.value, false})
	case filtering.FunctionLessEquals:
		hi(Bound{t.value, true})
	}
	return nil
}

// served reports whether an index answers q in order: its keys are the
// equality field (if any), then the sort field (unless it is _id), then _id.
func served(q *Query) bool {
	var keys []string
	if q.EqField != "" {
		keys = append(keys, q.EqField)
	}
	if q.SortField != FieldID {
		keys = append(keys, q.SortField)
	}
	keys = append(keys, FieldID)
	if len(keys) == 1 {
		return true // the _id index
	}
	for _, ix := range MovieIndexes {
		if slices.Equal(ix.Keys, keys) {
			return true
		}
	}
	return false
}

func publicName(field string) string {
	for k, v := range filterFields {
		if v == field {
			return k
		}
	}
	for k, v := range orderFields {
		if v == field {
			return k
		}
	}
	return field
}

func describe(q *Query) string {
	parts := []string{}
	if q.EqField != "" {
		parts = append(parts, "equality on "+publicName(q.EqField))
	}
	if q.Lower != nil || q.Upper != nil {
		parts = append(parts, "range on "+publicName(q.SortField))
	}
	order := "id"
	if q.SortField != FieldID {
		order = publicName(q.SortField)
	}
	if q.Desc {
		order += " desc"
	}
	return strings.Join(append(parts, "order by "+order), ", ")
}

// compare orders two values of the same kind; KindNull sorts first, as in
// MongoDB.
func compare(a, b Value) int {
	if a.Kind != b.Kind {
		if a.Kind == KindNull {
			return -1
		}
		if b.Kind == KindNull {
			return 1
		}
		// Int and float compare numerically.
		return cmpFloat(num(a), num(b))
	}
	switch a.Kind {
	case KindInt:
		return cmpInt(a.Int, b.Int)
	case KindFloat:
		return cmpFloat(a.Flt, b.Flt)
	case KindString:
		return strings.Compare(a.Str, b.Str)
	case KindTime:
		return a.Time.Compare(b.Time)
	}
	return 0
}

func num(v Value) float64 {
	if v.Kind == KindInt {
		return float64(v.Int)
	}
	return v.Flt
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CompareSort orders two sort values as the store does (a missing value
// first).
func CompareSort(a, b Value) int { return compare(a, b) }
