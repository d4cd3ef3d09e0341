package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildVersion is what the binary knows of its build.
type buildVersion struct {
	Version   string `json:"version"`            // module version, "(devel)" for a build from a work tree
	Revision  string `json:"revision,omitempty"` // VCS revision, when the build recorded it
	Time      string `json:"time,omitempty"`     // VCS commit time
	Modified  bool   `json:"modified,omitempty"` // the work tree had changes
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// readVersion reads the build information the Go toolchain stamps into the binary.
func readVersion() buildVersion {
	v := buildVersion{Version: "(unknown)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		v.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// versionLine is the version in one line, as --version prints it.
func versionLine(v buildVersion) string {
	parts := []string{"fulfil " + v.Version}
	if v.Revision != "" {
		rev := v.Revision
		if v.Modified {
			rev += " (modified)"
		}
		parts = append(parts, "revision "+rev)
	}
	if v.Time != "" {
		parts = append(parts, "committed "+v.Time)
	}
	parts = append(parts, v.GoVersion+" "+v.Platform)
	return strings.Join(parts, ", ")
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print the build's version: module version, VCS revision and time, Go version",
		Example: `  fulfil version
  fulfil version -o json
  fulfil --version`,
		Args: noArgs,
	}
	outputFlag(cmd.Flags(), &output, "text", false)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) int {
		v := readVersion()
		if output == "json" {
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return exitOK
		}
		fmt.Fprintln(cmd.OutOrStdout(), versionLine(v))
		return exitOK
	})
	return cmd
}
