package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stage is one FROM section of a Dockerfile.
type stage struct {
	from, name string
	lines      []string
}

// parseStages splits a Dockerfile into its stages, joining continued lines.
func parseStages(data string) []stage {
	var stages []stage
	var cur *stage
	joined := strings.ReplaceAll(data, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if strings.EqualFold(fields[0], "FROM") && len(fields) >= 2 {
			st := stage{from: fields[1]}
			if len(fields) >= 4 && strings.EqualFold(fields[2], "AS") {
				st.name = fields[3]
			}
			stages = append(stages, st)
			cur = &stages[len(stages)-1]
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, strings.Join(fields, " "))
		}
	}
	return stages
}

// instruction returns the argument of the last instruction named name in
// the stage, or of the stages it derives from.
func instruction(stages []stage, st stage, name string) string {
	for {
		for i := len(st.lines) - 1; i >= 0; i-- {
			f := strings.Fields(st.lines[i])
			if strings.EqualFold(f[0], name) {
				return strings.TrimSpace(strings.TrimPrefix(st.lines[i], f[0]))
			}
		}
		parent, ok := stageNamed(stages, st.from)
		if !ok {
			return ""
		}
		st = parent
	}
}

func stageNamed(stages []stage, name string) (stage, bool) {
	for _, st := range stages {
		if st.name == name {
			return st, true
		}
	}
	return stage{}, false
}

// TestDockerfile holds services/Dockerfile to the images the offline builder
// makes: per service a target of that name with a static binary on an empty
// base, /marquee/<service> as the entrypoint, the non-root user, the CA
// bundle, and pinned build images.
func TestDockerfile(t *testing.T) {
	repo, err := FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repo.Root, "services", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseStages(string(data))
	build, ok := stageNamed(stages, "build")
	if !ok {
		t.Fatal("no build stage")
	}
	if problem := imageProblem(build.from); problem != "" && !strings.Contains(build.from, "${") {
		t.Errorf("build image %s: %s", build.from, problem)
	}
	buildText := strings.Join(build.lines, "\n")
	if !strings.Contains(buildText, "CGO_ENABLED=0") {
		t.Error("the build stage does not set CGO_ENABLED=0")
	}
	for _, svc := range []string{"catalog", "search", "auth", "gateway"} {
		t.Run(svc, func(t *testing.T) {
			st, ok := stageNamed(stages, svc)
			if !ok {
				t.Fatalf("no stage named %s (docker build --target %s)", svc, svc)
			}
			root := st
			for root.from != "scratch" {
				parent, ok := stageNamed(stages, root.from)
				if !ok {
					t.Fatalf("stage %s derives from %s, want an empty (scratch) base", svc, root.from)
				}
				root = parent
			}
			if user := instruction(stages, st, "USER"); user != "65532:65532" {
				t.Errorf("USER %q, want 65532:65532", user)
			}
			if want := `["/marquee/` + svc + `"]`; instruction(stages, st, "ENTRYPOINT") != want {
				t.Errorf("ENTRYPOINT %s, want %s", instruction(stages, st, "ENTRYPOINT"), want)
			}
			if want := "--from=build /out/" + svc + " /marquee/" + svc; !strings.Contains(instruction(stages, st, "COPY"), want) {
				t.Errorf("the stage does not copy the binary (%s)", want)
			}
			if !strings.Contains(buildText, "./services/"+svc+"/cmd/"+svc) {
				t.Errorf("the build stage does not build ./services/%s/cmd/%s", svc, svc)
			}
		})
	}
	base, ok := stageNamed(stages, "base")
	if !ok || !strings.Contains(strings.Join(base.lines, "\n"), "ca-certificates.crt") {
		t.Error("the base stage does not carry the CA bundle")
	}
}
