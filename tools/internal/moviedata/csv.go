package moviedata

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// csvField is a record field a CSV column can be mapped to.
type csvField int

const (
	fieldTitle csvField = iota
	fieldYear
	fieldGenres
	fieldDirectors
	fieldCast
	fieldImdbScore
	fieldVotes
	fieldPopularity
	fieldRuntimeMinutes
	numFields
)

// csvFieldNames are the names --map accepts, in csvField order; the second
// and later names of an entry are aliases used when guessing from a header.
func csvFieldNames() [numFields][]string {
	return [numFields][]string{
		fieldTitle:          {"title", "name"},
		fieldYear:           {"year"},
		fieldGenres:         {"genres", "genre"},
		fieldDirectors:      {"directors", "director"},
		fieldCast:           {"cast"},
		fieldImdbScore:      {"imdbScore", "imdb_score"},
		fieldVotes:          {"votes"},
		fieldPopularity:     {"popularity"},
		fieldRuntimeMinutes: {"runtimeMinutes", "runtime"},
	}
}

// CSVFields lists the field names a CSV mapping may use.
func CSVFields() []string {
	names := csvFieldNames()
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n[0]
	}
	return out
}

// fold compares names ignoring case and the separators people put in
// headers.
func fold(s string) string {
	return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(s)))
}

type csvReader struct {
	r       *csv.Reader
	cols    [numFields]int // column index per field, -1 when unmapped
	header  []string
	sep     string
	started bool
	err     error
	// lastLine is the line of the last row read (the header's, 1, before
	// any record), so an error with no position of its own still names
	// where the input broke off.
	lastLine int
}

func newCSVReader(r io.Reader, opts Options) (*csvReader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	sep := opts.ListSeparator
	if sep == "" {
		sep = "|"
	}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &ParseError{Line: 1, Err: errors.New("empty input, want a header row")}
	}
	if err != nil {
		return nil, csvError(err, 1)
	}
	header = append([]string(nil), header...)
	cols, err := mapColumns(header, opts.Mapping)
	if err != nil {
		return nil, err
	}
	return &csvReader{r: cr, cols: cols, header: header, sep: sep}, nil
}

// mapColumns resolves the mapping against the header: explicit entries
// first, then header columns named like a field.
func mapColumns(header []string, mapping map[string]string) ([numFields]int, error) {
	var cols [numFields]int
	for i := range cols {
		cols[i] = -1
	}
	byName := make(map[string]int, len(header))
	for i, h := range header {
		if _, dup := byName[fold(h)]; !dup {
			byName[fold(h)] = i
		}
	}
	names := csvFieldNames()
	fieldOf := make(map[string]csvField)
	for f, ns := range names {
		for _, n := range ns {
			fieldOf[fold(n)] = csvField(f)
		}
	}
	keys := make([]string, 0, len(mapping))
	for k := range mapping {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error messages
	for _, k := range keys {
		f, ok := fieldOf[fold(k)]
		if !ok {
			return cols, fmt.Errorf("mapping: unknown field %q (want one of %s)", k, strings.Join(CSVFields(), ", "))
		}
		col, ok := byName[fold(mapping[k])]
		if !ok {
			return cols, fmt.Errorf("mapping: %s=%s: the header has no column %q", k, mapping[k], mapping[k])
		}
		cols[f] = col
	}
	for f, ns := range names {
		if cols[f] >= 0 {
			continue
		}
		for _, n := range ns {
			if col, ok := byName[fold(n)]; ok {
				cols[f] = col
				break
			}
		}
	}
	if cols[fieldTitle] < 0 {
		return cols, fmt.Errorf("mapping: no column for title (map one with title=COLUMN; the header has %s)", strings.Join(header, ", "))
	}
	return cols, nil
}

func (r *csvReader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
	}
	return rec, err
}

func (r *csvReader) next() (Record, error) {
	row, err := r.r.Read()
	if errors.Is(err, io.EOF) {
		return Record{}, io.EOF
	}
	if err != nil {
		return Record{}, csvError(err, max(r.lastLine, 1)+1)
	}
	line, _ := r.r.FieldPos(0)
	r.lastLine = line
	cell := func(f csvField) string {
		if c := r.cols[f]; c >= 0 && c < len(row) {
			return strings.TrimSpace(row[c])
		}
		return ""
	}
	rec := Record{Line: line, Title: cell(fieldTitle)}
	if rec.Title == "" {
		return Record{}, &ParseError{Line: line, Err: fmt.Errorf("column %q (title) is empty", r.header[r.cols[fieldTitle]])}
	}
	bad := func(f csvField, err error) error {
		return &ParseError{Line: line, Err: fmt.Errorf("column %q (%s): %w", r.header[r.cols[f]], csvFieldNames()[f][0], err)}
	}
	if v := cell(fieldYear); v != "" {
		n, err := parseInt32(v)
		if err != nil {
			return Record{}, bad(fieldYear, err)
		}
		rec.Year = &n
	}
	if v := cell(fieldRuntimeMinutes); v != "" {
		n, err := parseInt32(v)
		if err != nil {
			return Record{}, bad(fieldRuntimeMinutes, err)
		}
		rec.RuntimeMinutes = &n
	}
	if v := cell(fieldVotes); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Record{}, bad(fieldVotes, fmt.Errorf("want an integer, found %q", v))
		}
		rec.Votes = &n
	}
	for _, fp := range []struct {
		f   csvField
		dst **float64
	}{{fieldImdbScore, &rec.ImdbScore}, {fieldPopularity, &rec.Popularity}} {
		if v := cell(fp.f); v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return Record{}, bad(fp.f, fmt.Errorf("want a number, found %q", v))
			}
			*fp.dst = &x
		}
	}
	rec.Genres = r.list(cell(fieldGenres))
	rec.Directors = r.list(cell(fieldDirectors))
	rec.Cast = r.list(cell(fieldCast))
	return rec, nil
}

func (r *csvReader) list(v string) []string {
	if v == "" {
		return nil
	}
	return cleanList(strings.Split(v, r.sep))
}

// parseInt32 accepts integers, and floats without a fraction such as
// "1999.0", which spreadsheets like to write.
func parseInt32(v string) (int32, error) {
	if n, err := strconv.ParseInt(v, 10, 32); err == nil {
		return int32(n), nil
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || x != math.Trunc(x) || x < math.MinInt32 || x > math.MaxInt32 {
		return 0, fmt.Errorf("want an integer, found %q", v)
	}
	return int32(x), nil
}

// csvError turns encoding/csv's errors, which know their line, into a
// ParseError.
func csvError(err error, fallbackLine int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		line := pe.StartLine
		if errors.Is(pe.Err, csv.ErrFieldCount) || line == 0 {
			line = pe.Line
		}
		return &ParseError{Line: line, Err: fmt.Errorf("invalid CSV: %w", pe.Err)}
	}
	return &ParseError{Line: fallbackLine, Err: fmt.Errorf("reading input: %w", err)}
}

// ParseMapping parses a CSV column mapping written as
// "title=movie_title,year=title_year,directors=director_name".
func ParseMapping(s string) (map[string]string, error) {
	m := make(map[string]string)
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		field, col, ok := strings.Cut(part, "=")
		field, col = strings.TrimSpace(field), strings.TrimSpace(col)
		if !ok || field == "" || col == "" {
			return nil, fmt.Errorf("mapping entry %q: want FIELD=COLUMN", part)
		}
		if _, dup := m[field]; dup {
			return nil, fmt.Errorf("mapping: field %q mapped twice", field)
		}
		m[field] = col
	}
	return m, nil
}
