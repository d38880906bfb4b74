package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// build is what the binary knows of itself, from the build information the
// go command embeds: the module version (a tag with `go install …@v1.2.3`,
// "(devel)" from a checkout) and, when built inside a git checkout, the
// commit and whether the tree had uncommitted changes.
type build struct {
	version, revision, time, goVersion string
	modified                           bool
}

func readBuild() build {
	b := build{version: "unknown", revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.version, b.goVersion = info.Main.Version, info.GoVersion
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// String is the one line `version` prints.
func (b build) String() string {
	s := "todo-gateway " + b.version + " revision " + b.revision
	if b.modified {
		s += " (modified)"
	}
	if b.time != "" {
		s += " committed " + b.time
	}
	return s + " built with " + b.goVersion
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			versionUsage(stdout)
			return exitOK
		}
		return usageError(stderr, "version", versionUsage, fmt.Sprintf("unexpected argument %q", args[0]))
	}
	fmt.Fprintln(stdout, readBuild())
	return exitOK
}

func versionUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: todo-gateway version   (or todo-gateway --version)

Prints the module version, the VCS revision the binary was built from
("(modified)" when the tree had uncommitted changes), the commit time and
the Go version. The same is exported as the todo_gateway_build_info metric.
`)
}

// registerBuildInfo exports the build as a constant 1 with labels.
func registerBuildInfo(reg prometheus.Registerer, b build) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "todo_gateway_build_info",
		Help: "1, labelled with the module version, VCS revision and Go version of the running binary.",
	}, []string{"version", "revision", "modified", "go_version"})
	g.WithLabelValues(b.version, b.revision, fmt.Sprint(b.modified), b.goVersion).Set(1)
	reg.MustRegister(g)
}
