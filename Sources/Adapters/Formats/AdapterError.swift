/// Why an adapter could not be read, converted or written; messages name the file and what to do.
public struct AdapterError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
