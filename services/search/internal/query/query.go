// Package query turns the text of a search request (q, filter, order_by,
// page_size, page_token) into a validated, engine-neutral Request, and
// compiles its parts to Bleve queries.
//
// q is always plain text: it is analyzed into tokens and never handed to a
// query-string parser, so quotes, brackets, "~", "*" and the like are inert.
package query

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/marquee-dev/marquee/services/search/internal/analysis"
)

// Limits that bound what one request may cost.
const (
	// MaxQueryLength is the longest q accepted, in characters.
	MaxQueryLength = 500
	// MaxQueryTokens is the number of q tokens that take part in matching;
	// the rest are ignored so a long q cannot fan out into thousands of
	// fuzzy term expansions.
	MaxQueryTokens = 16
	// MaxFilterLength is the longest filter accepted, in bytes.
	MaxFilterLength = 2000
	// MaxFilterTerms bounds the number of comparisons in one filter.
	MaxFilterTerms = 64
	// MaxOrderLength bounds order_by, in bytes.
	MaxOrderLength = 200
	// DefaultPageSize and MaxPageSize follow AIP-158.
	DefaultPageSize = 20
	MaxPageSize     = 100
	// RelevanceWindow is how deep relevance-ordered results can be paged:
	// offsets past it are refused. Field orders page by key and have no cap.
	RelevanceWindow = 10000
)

// Reasons carried by InvalidError, surfaced as the ErrorInfo reason.
const (
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonInvalidPageToken = "INVALID_PAGE_TOKEN"
	ReasonInvalidFilter    = "INVALID_FILTER"
	ReasonInvalidOrder     = "INVALID_ORDER_BY"
	ReasonWindowExceeded   = "RESULT_WINDOW_EXCEEDED"
)

// InvalidError reports bad input in one request field.
type InvalidError struct {
	Field  string // the request field, such as "filter"
	Reason string // an UPPER_SNAKE reason
	Msg    string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Msg) }

func invalid(field, reason, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is an InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// SortField names a field that results can be ordered by.
type SortField string

// Sortable fields.
const (
	SortPopularity SortField = "popularity"
	SortImdbScore  SortField = "imdbScore"
	SortYear       SortField = "year"
	SortTitle      SortField = "title"
)

// OrderKey is one key of an order; the movie id always breaks ties, ascending.
type OrderKey struct {
	Field SortField
	Desc  bool
}

// Value is the value of one order key in a cursor: Num for numeric fields
// (missing values are -1, which sorts lowest), Str for the title key.
type Value struct {
	Num float64 `json:"n,omitempty"`
	Str string  `json:"s,omitempty"`
}

// Cursor is the position after the last result of a page in a field order.
type Cursor struct {
	Values []Value `json:"v"`
	ID     string  `json:"id"`
}

// Request is a parsed, validated search.
type Request struct {
	// Text is q after trimming; Tokens its analyzed tokens (at most
	// MaxQueryTokens) and Key its canonical form for exact-title matching.
	Text   string
	Tokens []string
	Key    string
	// Filter is nil when there is none.
	Filter Expr
	// Relevance is true when results are ordered by score; otherwise Order
	// holds at least one key.
	Relevance bool
	Order     []OrderKey
	PageSize  int
	// Offset is the start of the page in relevance order.
	Offset int
	// After is the cursor of field orders, nil on the first page.
	After *Cursor

	fingerprint string
}

// HasText reports whether the request searches text (otherwise it is
// discovery over the whole catalogue).
func (r *Request) HasText() bool { return len(r.Tokens) > 0 }

// Input is the raw request.
type Input struct {
	Q, Filter, OrderBy, PageToken string
	PageSize                      int32
}

// Parser parses requests. It is safe for concurrent use.
type Parser struct {
	analyzer *analysis.Analyzer
	tokens   *TokenCodec
}

// NewParser returns a Parser that signs page tokens with codec.
func NewParser(a *analysis.Analyzer, codec *TokenCodec) *Parser {
	return &Parser{analyzer: a, tokens: codec}
}

// Parse validates in and returns the request it describes.
func (p *Parser) Parse(in Input) (*Request, error) {
	for _, f := range []struct{ name, v string }{
		{"q", in.Q}, {"filter", in.Filter}, {"order_by", in.OrderBy}, {"page_token", in.PageToken},
	} {
		if !utf8.ValidString(f.v) {
			return nil, invalid(f.name, ReasonInvalidArgument, "must be valid UTF-8")
		}
	}
	if utf8.RuneCountInString(in.Q) > MaxQueryLength {
		return nil, invalid("q", ReasonInvalidArgument, "must be at most %d characters", MaxQueryLength)
	}
	if len(in.Filter) > MaxFilterLength {
		return nil, invalid("filter", ReasonInvalidFilter, "must be at most %d bytes", MaxFilterLength)
	}
	if len(in.OrderBy) > MaxOrderLength {
		return nil, invalid("order_by", ReasonInvalidOrder, "must be at most %d bytes", MaxOrderLength)
	}
	r := &Request{Text: strings.TrimSpace(in.Q)}
	switch {
	case in.PageSize < 0:
		return nil, invalid("page_size", ReasonInvalidArgument, "must not be negative")
	case in.PageSize == 0:
		r.PageSize = DefaultPageSize
	case in.PageSize > MaxPageSize:
		r.PageSize = MaxPageSize
	default:
		r.PageSize = int(in.PageSize)
	}
	if r.Text != "" {
		toks := p.analyzer.Tokens(r.Text)
		r.Key = strings.Join(toks, " ")
		if len(toks) > MaxQueryTokens {
			toks = toks[:MaxQueryTokens]
		}
		r.Tokens = toks
	}
	f, err := ParseFilter(in.Filter, p.analyzer)
	if err != nil {
		return nil, err
	}
	r.Filter = f
	if err := r.parseOrder(in.OrderBy); err != nil {
		return nil, err
	}
	r.fingerprint = fingerprint(r.Key, in.Filter, r.Relevance, r.Order)
	if in.PageToken != "" {
		tok, err := p.tokens.Decode(in.PageToken)
		if err != nil {
			return nil, err
		}
		if tok.Fingerprint != r.fingerprint {
			return nil, invalid("page_token", ReasonInvalidPageToken, "was issued for a different query")
		}
		if r.Relevance {
			if tok.Cursor != nil || tok.Offset <= 0 {
				return nil, invalid("page_token", ReasonInvalidPageToken, "is malformed")
			}
			r.Offset = tok.Offset
		} else {
			if tok.Cursor == nil || len(tok.Cursor.Values) != len(r.Order) {
				return nil, invalid("page_token", ReasonInvalidPageToken, "is malformed")
			}
			r.After = tok.Cursor
		}
	}
	if r.Relevance && r.Offset >= RelevanceWindow {
		return nil, invalid("page_token", ReasonWindowExceeded,
			"relevance order is limited to the first %d results; narrow the query or order by a field", RelevanceWindow)
	}
	return r, nil
}

// NextToken returns the token of the page after the one that ended with
// last (a cursor for field orders) or at offset (relevance).
func (p *Parser) NextToken(r *Request, nextOffset int, last *Cursor) string {
	t := pageToken{Fingerprint: r.fingerprint}
	if r.Relevance {
		if nextOffset >= RelevanceWindow {
			return ""
		}
		t.Offset = nextOffset
	} else {
		t.Cursor = last
	}
	return p.tokens.Encode(t)
}

func (r *Request) parseOrder(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s == "relevance" {
		if r.HasText() {
			r.Relevance = true
			return nil
		}
		if s == "relevance" {
			return invalid("order_by", ReasonInvalidOrder, "relevance needs q")
		}
		// Discovery: most popular first.
		r.Order = []OrderKey{{Field: SortPopularity, Desc: true}}
		return nil
	}
	seen := map[SortField]bool{}
	for _, part := range strings.Split(s, ",") {
		words := strings.Fields(part)
		if len(words) == 0 || len(words) > 2 {
			return invalid("order_by", ReasonInvalidOrder, "expected \"field [asc|desc]\" items separated by commas")
		}
		k := OrderKey{}
		switch words[0] {
		case string(SortPopularity), string(SortImdbScore), string(SortYear), string(SortTitle):
			k.Field = SortField(words[0])
		case "relevance":
			return invalid("order_by", ReasonInvalidOrder, "relevance cannot be combined with other keys")
		default:
			return invalid("order_by", ReasonInvalidOrder,
				"unknown field %q; sortable fields are relevance, popularity, imdbScore, year and title", truncate(words[0], 40))
		}
		if len(words) == 2 {
			switch words[1] {
			case "asc":
			case "desc":
				k.Desc = true
			default:
				return invalid("order_by", ReasonInvalidOrder, "direction must be asc or desc")
			}
		}
		if seen[k.Field] {
			return invalid("order_by", ReasonInvalidOrder, "field %s appears twice", k.Field)
		}
		seen[k.Field] = true
		r.Order = append(r.Order, k)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
