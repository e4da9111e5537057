// Package e2e drives Candado's operations page (/ui) in a real browser,
// Debian's chromium, through chromedp. It is a module of its own, so the
// root module never depends on chromedp.
package e2e
