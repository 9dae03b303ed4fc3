/// What needs SDXL itself (sampling and training on its UNet, baking into its checkpoint, the official
/// T-LoRA layout) refuses an adapter identified as made for another base, naming that base, instead of
/// failing later on module names it does not know. An adapter whose base is unknown is tried as SDXL.
public enum BaseRequirement {
    /// Throws a usage error (exit 2: the request makes no sense for this adapter).
    public static func requireSDXL(_ adapter: Adapter, for use: String) throws {
        guard let base = adapter.base.base, base != .sdxl else { return }
        throw ConversionUsageError(message: "\(adapter.origin ?? "the adapter"): a LoRA for \(adapter.base.described), not SDXL; \(use) needs an SDXL adapter")
    }
}
