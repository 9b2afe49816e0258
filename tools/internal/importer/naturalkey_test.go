package importer_test

import (
	"os"
	"testing"

	"golang.org/x/text/cases"

	"github.com/marquee-dev/marquee/tools/internal/importer"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

func year(y int32) *int32 { return &y }

func TestNormalize(t *testing.T) {
	fold := cases.Fold()
	for _, tc := range []struct{ in, want string }{
		{"The Wizard of Oz", "the wizard of oz"},
		{"  The\tWizard \n of   Oz ", "the wizard of oz"},
		{"Ame\u0301lie", "am\u00e9lie"}, // NFD input composes
		{"AM\u00c9LIE", "am\u00e9lie"},
		{"Stra\u00dfe", "strasse"}, // full case folding
		{"\u00a0Nbsp\u2003Em\u00a0", "nbsp em"},
	} {
		if got := importer.Normalize(fold, tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNaturalKeyIdentity(t *testing.T) {
	base := moviedata.Record{Title: "Batman", Year: year(1989), Directors: []string{"Tim Burton", "Sam Hamm"}}
	same := []moviedata.Record{
		{Title: " BATMAN ", Year: year(1989), Directors: []string{"sam  hamm", "TIM BURTON"}},
		{Title: "Batman", Year: year(1989), Directors: []string{"Sam Hamm", "", "Tim Burton"}, Genres: []string{"Action"}, Line: 99},
	}
	different := []moviedata.Record{
		{Title: "Batman", Year: year(1966), Directors: []string{"Tim Burton", "Sam Hamm"}},
		{Title: "Batman", Directors: []string{"Tim Burton", "Sam Hamm"}},
		{Title: "Batman", Year: year(1989), Directors: []string{"Tim Burton"}},
		{Title: "Batman Returns", Year: year(1989), Directors: []string{"Tim Burton", "Sam Hamm"}},
		{Title: "Batman", Year: year(1989), Directors: []string{"Tim Burton Sam Hamm"}},
	}
	fold := cases.Fold()
	key := importer.NaturalKey(fold, base)
	for _, r := range same {
		if got := importer.NaturalKey(fold, r); got != key {
			t.Errorf("NaturalKey(%+v) = %q, want %q", r, got, key)
		}
	}
	for _, r := range different {
		if got := importer.NaturalKey(fold, r); got == key {
			t.Errorf("NaturalKey(%+v) equals the base key", r)
		}
	}
}

// TestRequestIDIsStable pins the request id of a record: a change to the
// natural-key rule would make every rerun insert duplicates, so it must come
// with a new requestIDPrefix, and this test is where that shows.
func TestRequestIDIsStable(t *testing.T) {
	k := importer.NewKeyer()
	rec := moviedata.Record{Title: "The Wizard of Oz", Directors: []string{"Victor Fleming"}}
	got := k.RequestID(rec)
	const want = "import-v1-5c520bc549a5d84a8a18cbbbeaeff2b040f75aa24b58dc13bc2e38416021082c"
	if got != want {
		t.Errorf("RequestID = %q, want %q", got, want)
	}
	if len(got) > 100 {
		t.Errorf("RequestID is %d characters, the API allows 100", len(got))
	}
	again := k.RequestID(rec)
	if again == got {
		t.Error("a repeated natural key in one input got the same request id")
	}
	if third := importer.NewKeyer(); third.RequestID(rec) != got {
		t.Error("a new Keyer gives a different id for the first occurrence")
	}
}

func requestIDs(t *testing.T, format moviedata.Format, name string) (ids []string, distinctKeys int) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := moviedata.NewReader(format, f, moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := importer.NewKeyer()
	fold := cases.Fold()
	keys := make(map[string]bool)
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		keys[importer.NaturalKey(fold, rec)] = true
		ids = append(ids, k.RequestID(rec))
	}
	return ids, len(keys)
}

func TestIMDBYields248DistinctKeys(t *testing.T) {
	ids, keys := requestIDs(t, moviedata.FormatIMDB, dataDir+"/imdb.json")
	distinct := make(map[string]bool)
	for _, id := range ids {
		distinct[id] = true
	}
	if len(ids) != 248 || len(distinct) != 248 || keys != 248 {
		t.Errorf("imdb.json: %d records, %d request ids, %d natural keys; want 248 of each", len(ids), len(distinct), keys)
	}
	// A second pass maps every record to the same id.
	again, _ := requestIDs(t, moviedata.FormatIMDB, dataDir+"/imdb.json")
	for i := range ids {
		if ids[i] != again[i] {
			t.Fatalf("record %d: %s then %s", i, ids[i], again[i])
		}
	}
}

func TestWikipediaRepeatedKeysAreDisambiguated(t *testing.T) {
	ids, keys := requestIDs(t, moviedata.FormatWikipedia, dataDir+"/wikipedia-movies.ndjson.gz")
	distinct := make(map[string]bool)
	for _, id := range ids {
		distinct[id] = true
	}
	if len(ids) != 36273 || len(distinct) != 36273 {
		t.Errorf("%d records, %d request ids; want 36273 of each", len(ids), len(distinct))
	}
	if keys != 36273-19 {
		t.Errorf("%d natural keys, want %d (19 records repeat another's)", keys, 36273-19)
	}
}
