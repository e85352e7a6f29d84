import { describe, expect, it } from 'vitest';
import { liquidProblem } from './liquid-check';

// liquidProblem runs liquidjs configured as messaging configures it (rendering.ts).
describe('liquidProblem', () => {
  const valid = [
    'How likely are you to recommend us to a friend? Reply 0-10',
    'Hi {{ contact.firstName }}, how likely are you to recommend us? Reply 0-10',
    'Hi {{ contact.firstName | default: "there" | upcase }}!',
    'Hi {{- contact.firstName -}}!',
    'Hi {% if contact.firstName %}{{ contact.firstName }}{% else %}there{% endif %}',
    'Hi {% if contact.firstName %}x{% elsif contact.lastName == "X" %}z{% else %}y{% endif %}',
    '{% unless contact.firstName %}Hello{% endunless %}',
    '{% for t in contact.tags limit: 2 %}{{ t }} {{ forloop.index }}{% else %}none{% endfor %}',
    '{% assign n = contact.firstName | default: "friend" %}Hi {{ n }}',
    '{% capture g %}Hello{% endcapture %}{{ g }}',
    '{% case contact.country %}{% when "US", "CA" %}Hi{% else %}Hello{% endcase %}',
    'Your plan: {{ contact.attributes.plan }}',
    '{{ contact["firstName"] }}',
    '{% raw %}{{ not liquid {% endraw %}',
    '{% comment %}{{ whatever }}{% endcomment %}Rate us',
    '{{ "it\'s }" }}',
    '{{ contact.firstName | truncate: 10, "..." }}',
    '{{ contact.firstName | default: "x", allow_false: true }}',
    '{% if contact.tags contains "vip" and contact.country == "US" %}VIP{% endif %}',
    '{% for i in (1..3) %}{{ i }}{% endfor %}',
    '{% echo contact.firstName | default: "x" %}',
    'Hi {% # a comment %} there',
    '}} stray %} closers are text',
  ];
  it.each(valid)('accepts %j', (text) => {
    expect(liquidProblem(text)).toBeNull();
  });

  // Syntax errors carry liquidjs's own explanation after "is not valid Liquid:".
  const invalid: Array<[string, RegExp]> = [
    ['Hi {{ contact.firstName ', /not valid Liquid: output .* not closed/],
    ['Hi {% if contact.firstName %}{{ contact.firstName }}', /not valid Liquid: tag .*if.* not closed/],
    ['Hi {% endif %}', /not valid Liquid: tag "endif" not found/],
    ['Hi {% if contact.firstName %}x{% endfor %}', /not valid Liquid/],
    ['Hi {% else %}', /not valid Liquid: tag "else" not found/],
    ['Hi {% raw %}{{ x }}', /not valid Liquid: raw .* not closed/],
    ['Hi {{ firstName }}', /reads "firstName".*contact\.firstName/],
    ['Your order {{ orderId }}', /reads "orderId"/],
    ['Hi {{ contact.firstName | append: orderId }}', /reads "orderId"/],
    ['Hi {{ contact.first_name }}', /contact\.first_name, which contacts do not have/],
    ['Hi {{ contact.firstName | nope }}', /not valid Liquid: .*nope/],
    ['Hi {% include "x" %}', /not valid Liquid: tag "include" not found/],
    ['Hi {% foo %}', /not valid Liquid: tag "foo" not found/],
    ['{% for x %}{% endfor %}', /not valid Liquid/],
    ['{% assign x %}', /not valid Liquid/],
  ];
  it.each(invalid)('rejects %j', (text, message) => {
    expect(liquidProblem(text)).toMatch(message);
  });
});
