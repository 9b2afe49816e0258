// Package analysis is the text pipeline shared by indexing, querying and
// title completion: Unicode NFC normalisation, word segmentation (UAX #29),
// accent folding and lower-casing. Indexing and querying must agree token
// for token, so every path goes through the one analyzer defined here.
package analysis

import (
	"strings"
	"sync"
	"unicode/utf8"

	bleveanalysis "github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/registry"
	"golang.org/x/text/unicode/norm"
)

// AnalyzerName is the name under which the analyzer is registered with
// Bleve; index mappings refer to it, so it is part of the on-disk format.
const AnalyzerName = "marquee_text"

// nfcFilter composes decomposed characters ("e" + U+0301 -> "é"). Bleve's
// accent folding only knows precomposed letters, so without this step a
// title typed in NFD would keep its combining marks and never match.
type nfcFilter struct{}

func (nfcFilter) Filter(input []byte) []byte {
	if norm.NFC.IsNormal(input) {
		return input
	}
	return norm.NFC.Bytes(input)
}

// New returns the analyzer: NFC -> ASCII folding -> Unicode word tokenizer ->
// lower case. It removes no stop words: "The Thing" must stay findable.
func New() *bleveanalysis.DefaultAnalyzer {
	return &bleveanalysis.DefaultAnalyzer{
		CharFilters:  []bleveanalysis.CharFilter{nfcFilter{}, asciifolding.New()},
		Tokenizer:    unicode.NewUnicodeTokenizer(),
		TokenFilters: []bleveanalysis.TokenFilter{lowercase.NewLowerCaseFilter()},
	}
}

var registerOnce sync.Once

// Register makes the analyzer known to Bleve's registry under AnalyzerName.
// Bleve resolves analyzers by name when it opens an index, and its registry
// is process-wide, so this runs once, lazily, before the first index opens
// rather than in an init function.
func Register() {
	registerOnce.Do(func() {
		// The only possible error is a duplicate name, which the Once rules out.
		_ = registry.RegisterAnalyzer(AnalyzerName, func(map[string]any, *registry.Cache) (bleveanalysis.Analyzer, error) {
			return New(), nil
		})
	})
}

// Analyzer tokenizes text the way the index does. It is safe for concurrent
// use: Bleve's analyzer components keep no state between calls.
type Analyzer struct {
	a *bleveanalysis.DefaultAnalyzer
}

// NewAnalyzer returns an Analyzer.
func NewAnalyzer() *Analyzer { return &Analyzer{a: New()} }

// Tokens returns the normalised tokens of s. Invalid UTF-8 is replaced
// rather than rejected: callers that must reject it check utf8.ValidString.
func (a *Analyzer) Tokens(s string) []string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	stream := a.a.Analyze([]byte(s))
	out := make([]string, 0, len(stream))
	for _, t := range stream {
		out = append(out, string(t.Term))
	}
	return out
}

// Key returns the canonical form of s: its tokens joined by single spaces.
// "Amélie", "AMELIE" and "Ame\u0301lie" share the key "amelie"; "Star Wars:
// Episode IV" becomes "star wars episode iv". Exact-title matching, title
// ordering and completion all compare keys.
func (a *Analyzer) Key(s string) string {
	return strings.Join(a.Tokens(s), " ")
}
