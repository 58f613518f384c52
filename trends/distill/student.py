"""The student: the teacher's shape with fewer layers (half by default), and DistilBERT's initialisation — the
teacher's embeddings, one block out of every few, and its final norm, copied."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from trends.distill.teacher import Teacher
from trends.errors import UserError
from trends.text.model import GPT


def student_shape(student: DictConfig, teacher: Teacher, method: str) -> dict:
    """The student's GPT config: what `student.*` sets, the teacher's value where it is null. The context length and
    biases are always the teacher's (it must read the very windows the student reads)."""
    t = teacher.model.cfg
    shape = {"n_layer": student.n_layer or max(1, t.n_layer // 2), "n_head": student.n_head or t.n_head,
             "n_embd": student.n_embd or t.n_embd, "block_size": t.block_size, "dropout": student.dropout,
             "bias": t.bias}
    if method == "distilbert" and (shape["n_embd"], shape["n_head"]) != (t.n_embd, t.n_head):
        raise UserError(f"distill.method=distilbert copies the teacher's blocks, so the student must be as wide: "
                        f"student.n_embd={shape['n_embd']} and n_head={shape['n_head']} vs the teacher's "
                        f"{t.n_embd} and {t.n_head} (leave them null)")
    if method == "distilbert" and shape["n_layer"] > t.n_layer:
        raise UserError(f"student.n_layer={shape['n_layer']} is deeper than the teacher ({t.n_layer} layers)")
    if shape["n_embd"] % shape["n_head"]:
        raise UserError(f"student.n_embd={shape['n_embd']} must be divisible by student.n_head={shape['n_head']}")
    return shape


def chosen_blocks(teacher_layers: int, student_layers: int, chosen=None) -> list[int]:
    """Which teacher block initialises each student block: given, or one out of every teacher/student layers from
    the first (DistilBERT: one layer out of two; 4 → 2 takes blocks 0 and 2)."""
    blocks = list(chosen) if chosen is not None else [i * teacher_layers // student_layers
                                                      for i in range(student_layers)]
    if len(blocks) != student_layers or not all(0 <= b < teacher_layers for b in blocks):
        raise UserError(f"distill.teacher_blocks={blocks} must name {student_layers} of the teacher's blocks "
                        f"0…{teacher_layers - 1}")
    return blocks


@torch.no_grad()
def init_from_teacher(student: GPT, teacher: GPT, blocks: list[int]) -> None:
    """Copy the teacher's token and position embeddings (the head is tied to the former), the chosen blocks in order,
    and the final LayerNorm into the student."""
    student.tok_emb.load_state_dict(teacher.tok_emb.state_dict())
    if teacher.pos_emb is not None and student.pos_emb is not None:
        student.pos_emb.load_state_dict(teacher.pos_emb.state_dict())
    for mine, theirs in zip(student.blocks, blocks):
        mine.load_state_dict(teacher.blocks[theirs].state_dict())
    student.ln_f.load_state_dict(teacher.ln_f.state_dict())
