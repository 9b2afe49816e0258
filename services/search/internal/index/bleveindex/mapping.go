package bleveindex

import (
	"errors"
	"strconv"

	"github.com/blevesearch/bleve/v2"
	bleveanalysis "github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	bleveindexapi "github.com/blevesearch/bleve_index_api"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// newMapping describes the documents: explicit fields only (no dynamic
// mapping, no _all field), text analyzed with the shared analyzer, the
// canonical title as one keyword for exact matches, the stored movie, and
// the row keyword with doc values that leads from a hit to its table slot.
func newMapping() *mapping.IndexMappingImpl {
	text := func(positions bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analysis.AnalyzerName
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = positions
		f.DocValues = false
		return f
	}
	kw := func(docValues bool) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = false
		f.DocValues = docValues
		return f
	}
	src := bleve.NewTextFieldMapping()
	src.Index = false
	src.Store = true
	src.IncludeInAll = false
	src.DocValues = false
	src.Analyzer = keyword.Name

	doc := bleve.NewDocumentStaticMapping()
	add := func(name string, f *mapping.FieldMapping) { doc.AddFieldMappingsAt(name, f) }
	add(query.FieldTextTitle, text(true))
	add(query.FieldTextOriginalTitle, text(false))
	titleKey := kw(false)
	titleKey.Store = true // read back when the column table is loaded
	add(query.FieldTitleKey, titleKey)
	add(query.FieldTextDirectors, text(false))
	add(query.FieldTextCast, text(false))
	add(query.FieldSource, src)
	add(query.FieldRow, kw(true))

	m := bleve.NewIndexMapping()
	m.DefaultMapping = doc
	m.DefaultAnalyzer = analysis.AnalyzerName
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	// No _all field: every query names its fields.
	doc.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	return m
}

// docMaker turns movies into Bleve documents directly, with the analyzers
// and options of the mapping's fields. Going through the mapping's
// reflection walk costs about a tenth of the build, and its _all composite
// field another tenth, for nothing this index uses.
type docMaker struct {
	a       *analysis.Analyzer
	text    bleveanalysis.Analyzer
	keyword bleveanalysis.Analyzer
	opts    map[string]bleveindexapi.FieldIndexingOptions
}

func newDocMaker(m *mapping.IndexMappingImpl, a *analysis.Analyzer) (*docMaker, error) {
	d := &docMaker{a: a, text: m.AnalyzerNamed(analysis.AnalyzerName), keyword: m.AnalyzerNamed(keyword.Name),
		opts: map[string]bleveindexapi.FieldIndexingOptions{}}
	if d.text == nil || d.keyword == nil {
		return nil, errors.New("index analyzers are not registered")
	}
	for name, sub := range m.DefaultMapping.Properties {
		if len(sub.Fields) == 1 {
			d.opts[name] = sub.Fields[0].Options()
		}
	}
	return d, nil
}

func (d *docMaker) add(doc *document.Document, name string, pos int, value string, an bleveanalysis.Analyzer) {
	var ap []uint64
	if pos >= 0 {
		ap = []uint64{uint64(pos)}
	}
	doc.AddField(document.NewTextFieldCustom(name, ap, []byte(value), d.opts[name], an))
}

// document returns the Bleve document of a movie kept in table slot row.
func (d *docMaker) document(m *catalogv1.Movie, row int32) (*document.Document, error) {
	src, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	doc := document.NewDocument(m.GetId())
	d.add(doc, query.FieldTextTitle, -1, m.GetTitle(), d.text)
	d.add(doc, query.FieldTitleKey, -1, d.a.Key(m.GetTitle()), d.keyword)
	if m.GetOriginalTitle() != "" {
		d.add(doc, query.FieldTextOriginalTitle, -1, m.GetOriginalTitle(), d.text)
	}
	for i, dr := range m.GetDirectors() {
		if dr.GetName() != "" {
			d.add(doc, query.FieldTextDirectors, i, dr.GetName(), d.text)
		}
	}
	for i, c := range m.GetCast() {
		d.add(doc, query.FieldTextCast, i, c, d.text)
	}
	d.add(doc, query.FieldSource, -1, string(src), d.keyword)
	d.add(doc, query.FieldRow, -1, rowTerm(row), d.keyword)
	doc.SetIndexed()
	return doc, nil
}

// rowTerm and termRow convert a table slot to and from its index term: 8
// hex digits (doc values separate terms with 0xff, so raw bytes will not do).
func rowTerm(row int32) string {
	const hex = "0123456789abcdef"
	var b [8]byte
	v := uint32(row)
	for i := 7; i >= 0; i-- {
		b[i] = hex[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func termRow(t []byte) (int32, bool) {
	if len(t) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range t {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return int32(v), true
}

func optional(v *float64) float64 {
	if v == nil || *v < 0 {
		return query.Missing
	}
	return *v
}

// decadeLabel names the decade of a year: 1994 -> "1990s".
func decadeLabel(year int32) string {
	return strconv.Itoa(int(year)/10*10) + "s"
}
