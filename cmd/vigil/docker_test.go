package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDockerImage builds deploy/Dockerfile and runs `vigil version` in the
// image, where a container runtime answers. This machine's kind has the
// docker client and no engine, so here it says so and skips; the command
// lines in the Dockerfile are parsed everywhere (cli's
// TestDeployCommandLines).
func TestDockerImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no container runtime answers (docker info: %v: %s): the image is not built here", err, lastLine(string(out)))
	}
	tag := "vigil-test:" + time.Now().Format("20060102150405")
	build := exec.CommandContext(ctx, "docker", "build", "-f", "deploy/Dockerfile", "-t", tag, ".")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	defer exec.Command("docker", "rmi", "-f", tag).Run()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", tag, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "vigil") {
		t.Fatalf("docker run %s version: %v\n%s", tag, err, out)
	}
}

// lastLine is where docker info says what is wrong.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
