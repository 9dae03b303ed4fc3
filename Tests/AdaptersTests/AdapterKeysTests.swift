import Testing
@testable import Adapters

@Suite struct AdapterKeysTests {
    @Test func findsMarkersAnywhereInTheName() {
        #expect(AdapterKeys.bytes(of: "lora_unet_mid.hada_w1_a", contain: "hada_w1_a"))
        #expect(AdapterKeys.bytes(of: "x.lokr_w1.y", contain: "lokr_w1"))
        #expect(AdapterKeys.bytes(of: "abc", contain: ""))
        #expect(!AdapterKeys.bytes(of: "lora_unet_mid.lora_down.weight", contain: "hada_w1_a"))
        #expect(!AdapterKeys.bytes(of: "hada", contain: "hada_w1_a"))
        #expect(!AdapterKeys.bytes(of: "hada_w1_", contain: "hada_w1_a"))
    }

    @Test func namesTheUnsupportedVariant() {
        let loha = AdapterKeys.group(["lora_unet_a.hada_w1_a", "lora_unet_a.hada_w2_a", "lora_unet_a.alpha"])
        #expect(loha?.unsupportedVariant == nil)
        #expect(loha?.modules.first?.tensors[.hadaW1a] == "lora_unet_a.hada_w1_a")
        let tucker = AdapterKeys.group(["lora_unet_a.hada_w1_a", "lora_unet_a.hada_t1", "lora_unet_a.lora_mid.weight", "lora_unet_a.alpha"])
        #expect(tucker?.unsupportedVariant == nil)
        #expect(tucker?.modules.first?.tensors[.hadaT1] == "lora_unet_a.hada_t1")
        #expect(tucker?.modules.first?.tensors[.mid] == "lora_unet_a.lora_mid.weight")
        let oft = AdapterKeys.group(["lora_unet_a.oft_blocks", "lora_unet_a.alpha"])
        #expect(oft?.unsupportedVariant == "OFT")
        let dora = AdapterKeys.group(["m.lora_down.weight", "m.lora_up.weight", "m.dora_scale"])
        #expect(dora?.unsupportedVariant == "DoRA")
        let plain = AdapterKeys.group(["m.lora_down.weight", "m.lora_up.weight", "m.alpha"])
        #expect(plain?.unsupportedVariant == nil)
        #expect(plain?.format == .kohya)
    }

    /// PEFT's LoHa/LoKr share LyCORIS' suffixes; the module name (no `lora_` prefix) makes them PEFT.
    @Test func peftFamilyKeysArePEFT() {
        let peft = AdapterKeys.group(["base_model.model.down_blocks.0.resnets.0.conv1.hada_w1_a", "base_model.model.down_blocks.0.resnets.0.conv1.hada_t1"])
        #expect(peft?.format == .peft)
        #expect(peft?.modules.first?.fileName == "base_model.model.down_blocks.0.resnets.0.conv1")
        #expect(AdapterKeys.group(["lora_unet_a.lokr_w1", "lora_unet_a.lokr_w2"])?.format == .kohya)
    }
}
