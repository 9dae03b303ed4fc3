/// Why a `torch.save` file was refused; the message names the offending part.
public struct TorchPickleError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
