package query

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"go.einride.tech/aip/filtering"
	expr "google.golang.org/genproto/googleapis/api/expr/v1alpha1"

	"github.com/marquee-dev/marquee/services/search/internal/analysis"
)

// FilterField names a filterable field.
type FilterField string

// Filterable fields (the catalog's AIP-160 fields).
const (
	FieldGenres       FilterField = "genres"
	FieldDirectorID   FilterField = "directors.id"
	FieldDirectorName FilterField = "directors.name"
	FieldTitle        FilterField = "title"
	FieldYear         FilterField = "year"
	FieldImdbScore    FilterField = "imdbScore"
	FieldPopularity   FilterField = "popularity"
)

// IsNumeric reports whether f holds numbers.
func (f FilterField) IsNumeric() bool {
	return f == FieldYear || f == FieldImdbScore || f == FieldPopularity
}

// Op is a comparison.
type Op int

// Comparisons. OpContains is the ":" operator on text fields (title,
// directors.name): the value's tokens appear consecutively. On keyword
// fields (genres, directors.id) ":" is OpEq. "!=" becomes Not{OpEq}.
const (
	OpEq Op = iota
	OpContains
	OpLt
	OpLe
	OpGt
	OpGe
)

// Expr is a filter expression: And, Or, Not or Cmp.
type Expr interface{ isExpr() }

// And holds when all of its terms hold.
type And []Expr

// Or holds when any of its terms holds.
type Or []Expr

// Not negates X.
type Not struct{ X Expr }

// Cmp compares a field with a constant. For text and genre fields Str is
// already in canonical (analyzed) form; directors.id is compared verbatim.
type Cmp struct {
	Field FilterField
	Op    Op
	Str   string
	Num   float64
}

func (And) isExpr() {}
func (Or) isExpr()  {}
func (Not) isExpr() {}
func (Cmp) isExpr() {}

// declarations of the filterable fields. Repeated fields are lists of
// strings; "=" on them is accepted as well as ":" (both mean "has").
func declarations() (*filtering.Declarations, error) {
	list := filtering.TypeList(filtering.TypeString)
	return filtering.NewDeclarations(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent(string(FieldGenres), list),
		filtering.DeclareIdent(string(FieldDirectorID), list),
		filtering.DeclareIdent(string(FieldDirectorName), list),
		filtering.DeclareIdent(string(FieldTitle), filtering.TypeString),
		filtering.DeclareIdent(string(FieldYear), filtering.TypeInt),
		filtering.DeclareIdent(string(FieldImdbScore), filtering.TypeFloat),
		filtering.DeclareIdent(string(FieldPopularity), filtering.TypeFloat),
		filtering.DeclareFunction(filtering.FunctionEquals,
			filtering.NewFunctionOverload("=_list_string", filtering.TypeBool, list, filtering.TypeString)),
		filtering.DeclareFunction(filtering.FunctionNotEquals,
			filtering.NewFunctionOverload("!=_list_string", filtering.TypeBool, list, filtering.TypeString)),
	)
}

// ParseFilter parses an AIP-160 filter; "" is nil (no filter).
func ParseFilter(s string, a *analysis.Analyzer) (Expr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	decls, err := declarations()
	if err != nil {
		return nil, fmt.Errorf("declaring filter fields: %w", err)
	}
	f, err := parseFilterSafely(s, decls)
	if err != nil {
		return nil, invalid("filter", ReasonInvalidFilter, "%s", cleanFilterError(err))
	}
	c := converter{a: a}
	e, err := c.convert(f.CheckedExpr.GetExpr())
	if err != nil {
		return nil, err
	}
	if c.terms > MaxFilterTerms {
		return nil, invalid("filter", ReasonInvalidFilter, "has more than %d comparisons", MaxFilterTerms)
	}
	return e, nil
}

// parseFilterSafely guards against a parser bug turning hostile input into
// a crash of the whole process: the filter grammar is third-party code.
func parseFilterSafely(s string, decls *filtering.Declarations) (f filtering.Filter, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("could not be parsed")
		}
	}()
	return filtering.ParseFilterString(s, decls)
}

func cleanFilterError(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = truncate(msg, 300)
	}
	return msg
}

type converter struct {
	a     *analysis.Analyzer
	terms int
	depth int
}

func (c *converter) convert(e *expr.Expr) (Expr, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 32 {
		return nil, invalid("filter", ReasonInvalidFilter, "is nested too deeply")
	}
	call := e.GetCallExpr()
	if call == nil {
		return nil, invalid("filter", ReasonInvalidFilter, "must be made of comparisons such as year >= 1990")
	}
	args := call.GetArgs()
	switch call.GetFunction() {
	case filtering.FunctionAnd, filtering.FunctionFuzzyAnd:
		out := And{}
		for _, a := range args {
			x, err := c.convert(a)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case filtering.FunctionOr:
		out := Or{}
		for _, a := range args {
			x, err := c.convert(a)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case filtering.FunctionNot:
		if len(args) != 1 {
			return nil, invalid("filter", ReasonInvalidFilter, "NOT takes one operand")
		}
		x, err := c.convert(args[0])
		if err != nil {
			return nil, err
		}
		return Not{X: x}, nil
	}
	c.terms++
	if len(args) != 2 {
		return nil, invalid("filter", ReasonInvalidFilter, "unsupported function %q", call.GetFunction())
	}
	field, ok := fieldName(args[0])
	if !ok {
		return nil, invalid("filter", ReasonInvalidFilter, "the left side of %s must be a field", call.GetFunction())
	}
	lit := args[1].GetConstExpr()
	if lit == nil {
		return nil, invalid("filter", ReasonInvalidFilter, "the right side of %s must be a constant", call.GetFunction())
	}
	cmp := Cmp{Field: field}
	negate := false
	switch call.GetFunction() {
	case filtering.FunctionEquals:
		cmp.Op = OpEq
	case filtering.FunctionNotEquals:
		cmp.Op, negate = OpEq, true
	case filtering.FunctionHas:
		cmp.Op = OpContains
	case filtering.FunctionLessThan:
		cmp.Op = OpLt
	case filtering.FunctionLessEquals:
		cmp.Op = OpLe
	case filtering.FunctionGreaterThan:
		cmp.Op = OpGt
	case filtering.FunctionGreaterEquals:
		cmp.Op = OpGe
	default:
		return nil, invalid("filter", ReasonInvalidFilter, "unsupported operator %q", call.GetFunction())
	}
	if field.IsNumeric() {
		switch v := lit.GetConstantKind().(type) {
		case *expr.Constant_Int64Value:
			cmp.Num = float64(v.Int64Value)
		case *expr.Constant_DoubleValue:
			cmp.Num = v.DoubleValue
		default:
			return nil, invalid("filter", ReasonInvalidFilter, "%s takes a number", field)
		}
		if math.IsNaN(cmp.Num) || math.IsInf(cmp.Num, 0) {
			return nil, invalid("filter", ReasonInvalidFilter, "%s takes a finite number", field)
		}
		if cmp.Op == OpContains {
			cmp.Op = OpEq
		}
	} else {
		sv, ok := lit.GetConstantKind().(*expr.Constant_StringValue)
		if !ok {
			return nil, invalid("filter", ReasonInvalidFilter, "%s takes a quoted string", field)
		}
		if cmp.Op != OpEq && cmp.Op != OpContains {
			return nil, invalid("filter", ReasonInvalidFilter, "%s supports only =, != and :", field)
		}
		switch field {
		case FieldDirectorID:
			cmp.Str = sv.StringValue
			cmp.Op = OpEq
		case FieldGenres:
			cmp.Str = c.a.Key(sv.StringValue)
			cmp.Op = OpEq
		default: // title, directors.name
			cmp.Str = c.a.Key(sv.StringValue)
		}
	}
	if negate {
		return Not{X: cmp}, nil
	}
	return cmp, nil
}

func fieldName(e *expr.Expr) (FilterField, bool) {
	var name string
	switch {
	case e.GetIdentExpr() != nil:
		name = e.GetIdentExpr().GetName()
	case e.GetSelectExpr() != nil:
		op, ok := fieldName(e.GetSelectExpr().GetOperand())
		if !ok {
			return "", false
		}
		name = string(op) + "." + e.GetSelectExpr().GetField()
	default:
		return "", false
	}
	switch f := FilterField(name); f {
	case FieldGenres, FieldDirectorID, FieldDirectorName, FieldTitle, FieldYear, FieldImdbScore, FieldPopularity:
		return f, true
	}
	return FilterField(name), name == "directors"
}
