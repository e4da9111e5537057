module ofwatchdog

go 1.24.0
