package analysis_test

import (
	"testing"

	"github.com/marquee-dev/marquee/services/search/internal/analysis"
)

func TestKey(t *testing.T) {
	a := analysis.NewAnalyzer()
	for _, c := range []struct{ in, want string }{
		{"Amélie", "amelie"},
		{"Ame\u0301lie", "amelie"}, // decomposed: NFC first, then folding
		{"AMÉLIE", "amelie"},
		{"The Thing", "the thing"}, // no stop words
		{"Star Wars: Episode IV – A New Hope", "star wars episode iv a new hope"},
		{"  Léon:   The Professional ", "leon the professional"},
		{"Das Boot", "das boot"},
		{"Jürgen Prochnow", "jurgen prochnow"},
		{"!!!", ""},
		{"", ""},
		{"god\xfffather", "god father"},
	} {
		if got := a.Key(c.in); got != c.want {
			t.Errorf("Key(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
