"""One drill from gate to verdict (`runner`), back to the baseline (`recovery`, `health`, `dynamic_config`), and the negative controls that break the lab on purpose (`controls`)."""
