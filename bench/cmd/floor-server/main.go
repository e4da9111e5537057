// Command floor-server serves the HTTP floor (package floor) on
// 127.0.0.1:$CANDADO_PORT.
package main

import (
	"fmt"
	"net/http"
	"os"

	"handler/function/bench/internal/floor"
)

func main() {
	err := http.ListenAndServe("127.0.0.1:"+os.Getenv("CANDADO_PORT"), floor.Handler())
	fmt.Fprintln(os.Stderr, "floor-server:", err)
	os.Exit(1)
}
