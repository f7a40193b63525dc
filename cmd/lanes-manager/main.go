// Command lanes-manager runs the Kruise Lanes webhook and controllers in one controller-runtime
// manager.
package main

import (
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kruise-lanes/kruise-lanes/cmd/lanes-manager/app"
)

func main() {
	if err := app.NewCommand().ExecuteContext(ctrl.SetupSignalHandler()); err != nil {
		os.Exit(1)
	}
}
