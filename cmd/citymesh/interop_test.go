package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropMosquitto runs scripts/interop_mosquitto.sh: Eclipse
// Mosquitto's mosquitto_pub and mosquitto_sub against a citymesh broker built
// from this tree, in MQTT 3.1.1 and 5.0.
func TestInteropMosquitto(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("mosquitto_sub not installed (apt-get install mosquitto-clients); .ci/run installs it")
	}
	bin := filepath.Join(t.TempDir(), "citymesh")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "../../scripts/interop_mosquitto.sh", bin)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("interop script failed: %v", err)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatal("interop script reported no results")
	}
}
