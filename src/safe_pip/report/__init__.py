"""What safe-pip tells its users: console lines, and ``check``'s findings in text, JSON
and SARIF."""
