// Command kubectl-lanes operates Kruise Lanes traffic lanes; installed on PATH it is `kubectl lanes`.
package main

import (
	"os"

	"github.com/kruise-lanes/kruise-lanes/cmd/kubectl-lanes/app"
)

func main() {
	os.Exit(app.Run(os.Args[1:], app.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
