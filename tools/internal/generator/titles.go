package generator

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed words.txt
var wordsFile string

// wordList is a section of words.txt with its Zipf sampler.
type wordList struct {
	words []string
	dist  alias
}

func (l *wordList) pick(x uint64) string { return l.words[l.dist.pick(x)] }

// vocabulary is the parsed words.txt.
type vocabulary struct {
	noun, adjective, place, connector          wordList
	given, surname                             wordList
	syllableStart, syllableMiddle, syllableEnd []string
}

// parseVocabulary reads words.txt: "[section]" headers, then words
// separated by white space; '#' starts a comment; repeats are dropped.
func parseVocabulary(text string) (*vocabulary, error) {
	sections := make(map[string][]string)
	seen := make(map[string]map[string]bool)
	current := ""
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			current = line[1 : len(line)-1]
			seen[current] = make(map[string]bool)
			continue
		}
		if current == "" {
			return nil, fmt.Errorf("words: %q comes before any section", line)
		}
		for _, w := range strings.Fields(line) {
			if w == "-" {
				w = ""
			}
			if !seen[current][w] {
				seen[current][w] = true
				sections[current] = append(sections[current], w)
			}
		}
	}
	list := func(name string, s float64) (wordList, error) {
		ws := sections[name]
		if len(ws) == 0 {
			return wordList{}, fmt.Errorf("words: section [%s] is missing or empty", name)
		}
		return wordList{words: ws, dist: newAlias(zipfWeights(len(ws), s))}, nil
	}
	var v vocabulary
	var err error
	// Exponents: title words and surnames are strongly skewed (many titles
	// share "Love" or "Night", many people are called Smith); given names
	// less so.
	for _, l := range []struct {
		dst  *wordList
		name string
		s    float64
	}{
		{&v.noun, "noun", 0.9},
		{&v.adjective, "adjective", 0.8},
		{&v.place, "place", 0.8},
		{&v.connector, "connector", 1.3},
		{&v.given, "given", 0.5},
		{&v.surname, "surname", 0.6},
	} {
		if *l.dst, err = list(l.name, l.s); err != nil {
			return nil, err
		}
	}
	v.syllableStart = sections["syllable-start"]
	v.syllableMiddle = sections["syllable-middle"]
	v.syllableEnd = sections["syllable-end"]
	if len(v.syllableStart) == 0 || len(v.syllableMiddle) == 0 || len(v.syllableEnd) == 0 {
		return nil, fmt.Errorf("words: the syllable sections are missing")
	}
	return &v, nil
}

// sequels are appended to a few titles, so that some titles come in series.
func sequels() []string {
	return []string{"2", "3", "II", "III", "Part II", "Returns", "Reloaded", "Forever"}
}

// appendTitle writes a title of n words.
func (g *Generator) appendTitle(dst []byte, n int) []byte {
	dst = g.appendPhrase(dst, n, true)
	if g.next()%100 < 3 {
		s := g.m.sequels[g.next()%uint64(len(g.m.sequels))]
		dst = append(dst, ' ')
		dst = append(dst, s...)
	}
	return dst
}

// appendPhrase writes a phrase of n words; first says whether it opens the
// title (a leading "The" is capitalised, an inner one is not).
func (g *Generator) appendPhrase(dst []byte, n int, first bool) []byte {
	v := g.m.vocab
	r := g.next() % 100
	switch {
	case n <= 1:
		if r < 85 {
			return append(dst, v.noun.pick(g.next())...)
		}
		return append(dst, v.place.pick(g.next())...)
	case n == 2:
		switch {
		case r < 30:
			dst = appendArticle(dst, "The", first)
		case r < 65:
			dst = append(dst, v.adjective.pick(g.next())...)
		case r < 75:
			dst = append(dst, v.given.pick(g.next())...)
			dst = append(dst, "'s"...)
		default:
			dst = append(dst, v.noun.pick(g.next())...)
		}
		dst = append(dst, ' ')
		return append(dst, v.noun.pick(g.next())...)
	case n == 3 && r < 40:
		dst = appendArticle(dst, "The", first)
		dst = append(dst, ' ')
		dst = append(dst, v.adjective.pick(g.next())...)
		dst = append(dst, ' ')
		return append(dst, v.noun.pick(g.next())...)
	case n >= 4 && r < 12:
		// "Heat: The Last Night" — a subtitle after a colon.
		left := 1 + int(g.next()%uint64(n-2))
		dst = g.appendPhrase(dst, left, first)
		dst = append(dst, ": "...)
		return g.appendPhrase(dst, n-left, true)
	default:
		// "Heart of the Sea", "Love in Paris": two phrases and a connector.
		left := 1 + int(g.next()%uint64(n-2))
		dst = g.appendPhrase(dst, left, first)
		dst = append(dst, ' ')
		dst = append(dst, v.connector.pick(g.next())...)
		dst = append(dst, ' ')
		return g.appendPhrase(dst, n-1-left, false)
	}
}

func appendArticle(dst []byte, article string, first bool) []byte {
	if first {
		return append(dst, article...)
	}
	return append(append(dst, article[0]+('a'-'A')), article[1:]...)
}
