"""Pretrained transformer encoders (mBERT for XTREME) through transformers' AutoModel."""

from __future__ import annotations

from torch import Tensor, nn
from transformers import AutoConfig, AutoModel

OUTPUTS = ("pooler", "cls", "tokens")


class TransformerEncoder(nn.Module):
    """``AutoModel`` from a hub name or a local directory; z is (``output``)

    * ``pooler``: BERT's pooler output, tanh(W·h_[CLS] + b) — the sentence-pair representation of LibMTL's
      PAWS-X example (examples/xtreme/train_pawsx.py@dcb2a80: ``outputs[1]`` of BertModel);
    * ``cls``: the [CLS] token's last hidden state, without the pooler;
    * ``tokens``: every token's last hidden state (token tagging).

    ``pretrained=False`` builds the same architecture with random weights from its config. Inputs are the
    tokenizer's dict of tensors."""

    def __init__(
        self, name: str = "bert-base-multilingual-cased", pretrained: bool = True, output: str = "pooler"
    ):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"dataset.encoder.output must be one of {list(OUTPUTS)}, got {output!r}")
        if pretrained:
            # from_pretrained returns the model in eval mode, and Lightning (>= 2.2) keeps a module's mode:
            # without train() mBERT would fine-tune with its dropout off
            self.model = AutoModel.from_pretrained(name).train()
        else:
            self.model = AutoModel.from_config(AutoConfig.from_pretrained(name))
        if output == "pooler" and getattr(self.model, "pooler", None) is None:
            raise ValueError(f"{name} has no pooler; set dataset.encoder.output=cls")
        self.output = output
        self.out_features = self.model.config.hidden_size
        self.channel_dim = -1  # z is [B, H] or, for tokens, [B, L, H]: the hidden size is last

    def unused_parameters(self) -> list[nn.Parameter]:
        """The pooler's parameters when z is not its output (``cls``, ``tokens``): no loss depends on them, so
        they cannot serve as the last shared layer (``MTLArchitecture.last_shared_layer``)."""
        pooler = getattr(self.model, "pooler", None)
        return [] if self.output == "pooler" or pooler is None else list(pooler.parameters())

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        result = self.model(**inputs)
        if self.output == "pooler":
            return result.pooler_output
        hidden = result.last_hidden_state
        return hidden[:, 0] if self.output == "cls" else hidden
