package configref_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/tools/internal/configref"
)

// TestReadmeListsEveryKey keeps the README's configuration reference in step
// with the services' Config types: regenerate it with `marquee config`.
func TestReadmeListsEveryKey(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	readme, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := configref.Keys()
	if len(keys) < 40 {
		t.Fatalf("only %d keys: the services' configs were not walked", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(string(readme), "`"+k.Env+"`") {
			t.Errorf("README.md does not document %s (%s): run `go run ./tools/cmd/marquee config` and update the table", k.Name, k.Env)
		}
	}
}
