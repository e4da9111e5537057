package promtext

import (
	"bufio"
	"fmt"
)

// gaugeFunc is a gauge whose value is read at each scrape.
type gaugeFunc struct {
	name, help string
	value      func() float64
}

func (g gaugeFunc) write(w *bufio.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", g.name, escapeHelp(g.help), g.name, g.name, formatFloat(g.value()))
}

// NewGaugeFunc adds a gauge without labels whose value is value(), called
// at each scrape; value must be safe for concurrent use.
func (r *Registry) NewGaugeFunc(name, help string, value func() float64) {
	r.add(gaugeFunc{name: name, help: help, value: value})
}
