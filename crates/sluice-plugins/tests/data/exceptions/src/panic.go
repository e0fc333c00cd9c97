// A nil map write panics in main: the runtime prints the panic and the goroutine's stack.
package main

import (
	"fmt"
	"os"
)

func store(m map[string]int, k string) {
	m[k] = 1
}

func main() {
	fmt.Fprintln(os.Stderr, "INFO go worker started")
	var m map[string]int
	store(m, "order")
}
