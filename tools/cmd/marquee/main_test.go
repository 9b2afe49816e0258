package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/tools/internal/generator"
	"github.com/marquee-dev/marquee/tools/internal/importer/catalogfake"
)

const dataDir = "../../../data"

// testEnv runs commands in-process with buffers for streams.
type testEnv struct {
	env
	out, errOut bytes.Buffer
}

func newTestEnv(stdin string, vars map[string]string, terminal bool) *testEnv {
	te := &testEnv{}
	te.env = env{
		stdin:      strings.NewReader(stdin),
		stdout:     &te.out,
		stderr:     &te.errOut,
		getenv:     func(k string) string { return vars[k] },
		isTerminal: func(io.Writer) bool { return terminal },
	}
	return te
}

func (te *testEnv) run(t *testing.T, args ...string) error {
	t.Helper()
	te.out.Reset()
	te.errOut.Reset()
	return run(context.Background(), args, &te.env)
}

func startCatalog(t *testing.T) (*catalogfake.Server, string) {
	t.Helper()
	fake := catalogfake.New()
	fake.Token = "admin-token"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := fake.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return fake, addr
}

func TestHelpListsTheCommands(t *testing.T) {
	te := newTestEnv("", nil, false)
	if err := te.run(t, "--help"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"import", "generate"} {
		if !strings.Contains(te.out.String(), want) {
			t.Errorf("help does not list %q:\n%s", want, te.out.String())
		}
	}
	if err := te.run(t, "frobnicate"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

func TestGenerate(t *testing.T) {
	te := newTestEnv("", nil, false)
	if err := te.run(t, "generate", "--count", "5", "--seed", "3", "--start", "10"); err != nil {
		t.Fatal(err)
	}
	p, err := generator.DefaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	g, err := generator.New(p, generator.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := g.WriteNDJSON(context.Background(), &want, 10, 5); err != nil {
		t.Fatal(err)
	}
	if te.out.String() != want.String() {
		t.Errorf("generate wrote\n%s\nwant\n%s", te.out.String(), want.String())
	}
	for _, args := range [][]string{
		{"generate", "--format", "csv"},
		{"generate", "--years", "nope"},
		{"generate", "--profile", filepath.Join(t.TempDir(), "missing.json")},
		{"generate", "extra-arg"},
	} {
		if err := te.run(t, args...); err == nil {
			t.Errorf("%q succeeded", args)
		}
	}
}

func TestImportIMDBTwice(t *testing.T) {
	fake, addr := startCatalog(t)
	te := newTestEnv("", map[string]string{"MARQUEE_TOKEN": "admin-token"}, false)
	file := filepath.Join(dataDir, "imdb.json")

	if err := te.run(t, "import", "--addr", addr, "--format", "imdb", file); err != nil {
		t.Fatalf("%v\n%s", err, te.out.String())
	}
	if !strings.Contains(te.out.String(), "248 records read, 248 inserted, 0 skipped as duplicates, 0 rejected") {
		t.Errorf("first summary: %s", te.out.String())
	}
	if err := te.run(t, "import", "--addr", addr, "--format", "imdb", "--batch-size", "7", file); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(te.out.String(), "248 records read, 0 inserted, 248 skipped as duplicates, 0 rejected") {
		t.Errorf("second summary: %s", te.out.String())
	}
	if fake.Len() != 248 {
		t.Errorf("catalog has %d movies, want 248", fake.Len())
	}
	if te.errOut.Len() != 0 {
		t.Errorf("no progress bar is drawn when stderr is not a terminal, got %q", te.errOut.String())
	}
}

func TestImportStandardInputWithProgress(t *testing.T) {
	fake, addr := startCatalog(t)
	gen := newTestEnv("", nil, false)
	if err := gen.run(t, "generate", "--count", "300", "--seed", "11"); err != nil {
		t.Fatal(err)
	}
	te := newTestEnv(gen.out.String(), nil, true)
	if err := te.run(t, "import", "--addr", addr, "--token", "Bearer admin-token", "--format", "wikipedia", "-"); err != nil {
		t.Fatalf("%v\n%s", err, te.out.String())
	}
	if !strings.Contains(te.out.String(), "300 inserted") || fake.Len() != 300 {
		t.Errorf("summary %q, catalog %d movies; want 300", te.out.String(), fake.Len())
	}
	if !strings.Contains(te.errOut.String(), "inserted") {
		t.Errorf("the progress bar on a terminal shows no counts: %q", te.errOut.String())
	}
}

func TestImportMalformedFileNamesTheLine(t *testing.T) {
	_, addr := startCatalog(t)
	file := filepath.Join(t.TempDir(), "movies.ndjson")
	content := `{"title": "One", "year": 1999}` + "\n" + `{"title": "Two", "year": 2000}` + "\n" + `{"title": "Three", "year": 20` + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	te := newTestEnv("", map[string]string{"MARQUEE_TOKEN": "admin-token"}, false)
	err := te.run(t, "import", "--addr", addr, "--format", "wikipedia", file)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error = %v, want one naming line 3", err)
	}
	if !strings.Contains(te.out.String(), "2 inserted") {
		t.Errorf("summary %q, want the two good records inserted", te.out.String())
	}
}

func TestImportRejectedRecordsFailTheCommand(t *testing.T) {
	_, addr := startCatalog(t)
	input := `{"title": "Fine", "year": 1999}` + "\n" + `{"title": "Ancient", "year": 1700}` + "\n"
	te := newTestEnv(input, map[string]string{"MARQUEE_TOKEN": "admin-token"}, false)
	err := te.run(t, "import", "--addr", addr, "--format", "wikipedia", "-")
	if err == nil || !strings.Contains(err.Error(), "rejected 1 records") {
		t.Errorf("error = %v, want one about 1 rejected record", err)
	}
	if out := te.out.String(); !strings.Contains(out, `rejected line 2 "Ancient": year:`) || !strings.Contains(out, "1 inserted") {
		t.Errorf("summary = %q", out)
	}
}

func TestImportCSVWithMapping(t *testing.T) {
	fake, addr := startCatalog(t)
	file := filepath.Join(t.TempDir(), "movies.csv")
	csv := "Name,Released,Kinds,Made by\n" +
		"Alien,1979,Horror|Sci-Fi,Ridley Scott\n" +
		"\"Amélie\",2001,Comedy|Romance,Jean-Pierre Jeunet\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	te := newTestEnv("", map[string]string{"MARQUEE_TOKEN": "admin-token"}, false)
	if err := te.run(t, "import", "--addr", addr, "--format", "csv", "--map", "title=Name,year=Released,genres=Kinds,directors=Made by", file); err != nil {
		t.Fatalf("%v\n%s", err, te.out.String())
	}
	movies := fake.Movies()
	if len(movies) != 2 || movies[0].GetTitle() != "Alien" || movies[0].GetYear() != 1979 ||
		strings.Join(movies[0].GetGenres(), ",") != "Horror,Sci-Fi" || movies[0].GetDirectors()[0].GetName() != "Ridley Scott" {
		t.Errorf("movies = %v", movies)
	}
	for _, args := range [][]string{
		{"import", "--addr", addr, "--format", "csv", "--map", "title", file},
		{"import", "--addr", addr, "--format", "imdb", "--map", "title=Name", file},
		{"import", "--addr", addr, "--format", "xml", file},
		{"import", "--addr", addr, file},
		{"import", "--addr", addr, "--format", "csv", "--batch-size", "101", file},
		{"import", "--addr", addr, "--format", "csv", filepath.Join(t.TempDir(), "missing.csv")},
	} {
		if err := te.run(t, args...); err == nil {
			t.Errorf("%q succeeded", args)
		}
	}
}
