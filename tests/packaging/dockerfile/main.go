// Command dockerfile-check parses a Dockerfile with BuildKit's own parser (the one `docker
// build` uses), runs BuildKit's linter on it, checks the shape bbconn's image needs, and prints
// what tests/packaging/dockerfile-target.sh reproduces outside an engine, as JSON:
//
//	{"builder": "rust:1.95-bookworm", "final": "gcr.io/distroless/cc-debian12:nonroot",
//	 "cargo": ["cargo", "build", ...], "binary": "target/release/bbconn"}
//
// usage: dockerfile-check Dockerfile
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

type result struct {
	Builder  string   `json:"builder"`
	Final    string   `json:"final"`
	Cargo    []string `json:"cargo"`
	Binary   string   `json:"binary"`
	User     string   `json:"user"`
	Warnings []string `json:"warnings"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile-check:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: dockerfile-check Dockerfile")
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	var res result
	for _, w := range ast.Warnings {
		res.Warnings = append(res.Warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, _ []parser.Range) {
		res.Warnings = append(res.Warnings, rule+": "+msg)
	}})
	stages, _, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		return fmt.Errorf("instructions: %w", err)
	}
	if len(stages) < 2 {
		return fmt.Errorf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	res.Builder, res.Final = build.BaseName, final.BaseName
	if !regexp.MustCompile(`^rust:1\.95(\.[0-9]+)?(-[a-z]+)?$`).MatchString(build.BaseName) {
		return fmt.Errorf("builder %q: want rust:1.95", build.BaseName)
	}
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/") {
		return fmt.Errorf("final image %q: want gcr.io/distroless/...", final.BaseName)
	}
	cargoRE := regexp.MustCompile(`(?s)(cargo\s+build\b[^&;|]*)`)
	installRE := regexp.MustCompile(`install\s+(?:\S+\s+)*?(\S*target/\S+/bbconn)\s+(\S+)`)
	built := ""
	for _, cmd := range build.Commands {
		run, ok := cmd.(*instructions.RunCommand)
		if !ok {
			continue
		}
		line := strings.Join(run.CmdLine, " ")
		if m := cargoRE.FindStringSubmatch(line); m != nil {
			if res.Cargo != nil {
				return fmt.Errorf("more than one cargo build in the builder stage")
			}
			lex := shell.NewLex('\\')
			words, err := lex.ProcessWords(strings.TrimSpace(m[1]), shell.EnvsFromSlice(nil))
			if err != nil {
				return fmt.Errorf("cargo command %q: %w", m[1], err)
			}
			res.Cargo = words
		}
		if m := installRE.FindStringSubmatch(line); m != nil {
			res.Binary, built = m[1], m[2]
		}
	}
	if res.Cargo == nil {
		return fmt.Errorf("no `cargo build` in the builder stage")
	}
	if res.Binary == "" {
		return fmt.Errorf("the builder stage does not install target/.../bbconn")
	}
	copied := false
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			if c.From == build.Name && len(c.SourcePaths) == 1 && c.SourcePaths[0] == built && c.DestPath == "/bbconn" {
				copied = true
			}
		case *instructions.UserCommand:
			res.User = c.User
		case *instructions.EntrypointCommand:
			if c.PrependShell || strings.Join(c.CmdLine, " ") != "/bbconn" {
				return fmt.Errorf("ENTRYPOINT %v: want [\"/bbconn\"] (exec form)", c.CmdLine)
			}
		case *instructions.CmdCommand:
			if c.PrependShell || strings.Join(c.CmdLine, " ") != "run" {
				return fmt.Errorf("CMD %v: want [\"run\"] (exec form)", c.CmdLine)
			}
		}
	}
	if !copied {
		return fmt.Errorf("the final stage does not COPY --from=%s %s /bbconn", build.Name, built)
	}
	if res.User != "65532:65532" && res.User != "65532" {
		return fmt.Errorf("USER %q: want 65532 (nonroot)", res.User)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
