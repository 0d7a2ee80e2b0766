"""Built-in tiny models, made locally and offline: the quickstart and the tests use them.

`build_tiny_llama(dir)` writes a randomly initialised Llama with a byte-level BPE tokenizer
trained on a small generated corpus, as a normal Hugging Face model directory.
"""

import random
from pathlib import Path

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, *ROLE_TOKENS)

# Each turn is `<|role|>\n content </s>`; assistant content and its eos sit inside
# {% generation %} so TRL's assistant_only_loss trains on exactly what the model must produce.
# With `tools=`, the tool schemas open the conversation as a system turn (after the system
# message, if any), a tool call is written `<tool_call>{"name", "arguments"}</tool_call>` and a
# tool result comes back as a user turn `<tool_response>...</tool_response>` (the Hermes/Qwen
# convention, with no new special tokens); without tools the rendering is what it always was.
CHAT_TEMPLATE = (
    "{% if tools %}"
    "{{ '<|system|>\n' }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\n\n' }}{% endif %}"
    "{{ 'Tools:\n' }}"
    "{% for tool in tools %}"
    "{{ (tool['function'] if tool['function'] is defined else tool) | tojson }}{{ '\n' }}"
    "{% endfor %}"
    '{{ \'Call one with <tool_call>{"name": ..., "arguments": {...}}</tool_call>.</s>\n\' }}'
    "{% endif %}"
    "{% for message in messages %}"
    "{% if tools and loop.first and message['role'] == 'system' %}"
    "{% elif message['role'] == 'assistant' and message['tool_calls'] %}"
    "{{ '<|assistant|>\n' }}{% generation %}"
    "{% if message['content'] %}{{ message['content'] + '\n' }}{% endif %}"
    "{% for call in message['tool_calls'] %}"
    "{% set call = call['function'] if call['function'] is defined else call %}"
    "{{ '<tool_call>' }}{{ {'name': call['name'], 'arguments': call['arguments']} | tojson }}"
    "{{ '</tool_call>' }}"
    "{% endfor %}{{ '</s>' }}{% endgeneration %}{{ '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + '</s>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% elif message['role'] == 'tool' %}"
    "{{ '<|user|>\n<tool_response>' + message['content'] + '</tool_response></s>\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '</s>' }}{{ '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _word_list(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


_NAMES = _word_list(
    "Alice Bob Carol David Emma Frank Grace Henry Isabel Jack Karen Liam Maria Noah Olivia "
    "Peter Quinn Rachel Sam Tina Umar Vera Walter Xavier Yara Zoe Ahmed Chen Diego Fatima "
    "Hiro Ivan Juan Kofi Lena Mehmet Nadia Omar Priya Ravi Sofia Tomas Yuki"
)
_CITIES = _word_list(
    "London,Paris,Berlin,Madrid,Rome,Tokyo,Delhi,Cairo,Lagos,Lima,Toronto,Chicago,Boston,"
    "Seattle,Sydney,Dublin,Oslo,Vienna,Prague,Warsaw,Istanbul,Seoul,Beijing,Mumbai,Nairobi,"
    "Mexico City,New York,San Francisco,Buenos Aires,Rio de Janeiro",
    sep=",",
)
_WORDS = _word_list(
    "the a an and or but if then so of to in on at by for with from as is are was were be "
    "been has have had do does did not no yes this that these those it its he she they we "
    "you I me my your his her their our who what when where why how which name age city "
    "years old lives works born student teacher doctor engineer answer question data model "
    "text json value key list number true false null hello thanks please summary translate "
    "write explain example result good bad best first last new old small large people time "
    "day year work life world house school book water food friend family company country"
)
_PUNCT = list(".,;:!?-'\"()[]{}/@#$%&*+=<>_~|\\`^")


def _sentence(rng: random.Random) -> str:
    name, city, age = rng.choice(_NAMES), rng.choice(_CITIES), rng.randint(1, 99)
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
    templates = (
        f"{name} is {age} years old and lives in {city}.",
        f'{{"name": "{name}", "age": {age}, "city": "{city}"}}',
        f"{words.capitalize()}{rng.choice('.!?')}",
        f"Q: {words}? A: {rng.randint(0, 10 ** rng.randint(1, 7))}",
        f"{name}, {city}; {rng.random():.4f} {rng.randint(-999, 9999)} {rng.choice(_PUNCT)}",
        f'["{name}", {age}, {str(rng.random() > 0.5).lower()}, null]',
    )
    return rng.choice(templates)


def tokenizer_corpus(num_lines: int = 4000) -> list[str]:
    """A small fixed English/JSON/digits corpus, so the tokenizer is identical on every build."""
    rng = random.Random(1234)
    lines = [_sentence(rng) for _ in range(num_lines)]
    lines.append(" ".join(str(i) for i in range(1000)))
    lines.append(" ".join(_PUNCT))
    return lines


def _train_tokenizer(vocab_size: int):
    """Train a byte-level BPE tokenizer: every byte is in the alphabet, so any text encodes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    return tokenizer


def build_tokenizer(vocab_size: int = 2048):
    """The tiny model's tokenizer as a `PreTrainedTokenizerFast` with chat template."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(vocab_size),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
        padding_side="right",
    )


def build_tiny_llama(
    output_dir: Path,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_size: int = 2048,
    seed: int = 0,
) -> Path:
    """Build a randomly initialised tiny Llama and its tokenizer into `output_dir`.

    The same arguments always give the same weights and tokenizer. Returns `output_dir`.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    output_dir = Path(output_dir)
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=64,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
