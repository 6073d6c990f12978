"""One module per intent. Each builds its answer for one user through the apps' selectors:

- ``rows(user, entities, ctx)``: the objects the answer is about, as the asker may see them;
- ``visible(member, rows)``: the pks of those a group member may see too (selectors again);
- ``render(rows, entities, ctx)``: the ``Answer`` (a card's content and its plain text).
"""
