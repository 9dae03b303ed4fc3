/// "1 adapter", "2 adapters": counts in messages agree with their noun.
func counted(_ n: Int, _ noun: String) -> String {
    "\(n) \(noun)\(n == 1 ? "" : "s")"
}
